"""Apache Superset against a running `kpidb serve`, driven as an analyst drives it,
through Superset's own REST API: a fresh Superset (SQLite metadata database in a
temporary directory) is set up and started on loopback, the kpidb database is tested
and added, its tables listed and described, a dataset made on a table and a virtual
one on a table function, charts queried from both, and SQL Lab run (Superset
re-renders the SQL, upper-casing function names). Answers are checked against the
same questions asked of kpidb directly. Settings come from the environment; prints
one line per check and exits non-zero on the first failure."""

import decimal
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import psycopg2
import requests

host = os.environ["KPIDB_PG_HOST"]
port = int(os.environ["KPIDB_PG_PORT"])
user = os.environ["KPIDB_PG_USER"]
password = os.environ["KPIDB_PG_PASSWORD"]
expected_score = decimal.Decimal(os.environ["KPIDB_EXPECTED_SCORE"])
expected_ranked = int(os.environ["KPIDB_EXPECTED_RANKED"])
bin_dir = os.path.dirname(sys.executable)
superset = os.path.join(bin_dir, "superset")


def check(name, ok, detail=""):
    if not ok:
        print(f"FAIL {name}: {detail}")
        print(f"(Superset's log and metadata database are kept in {home})")
        sys.exit(1)
    print(f"ok   {name}")


def answered(name, response):
    """The JSON of a successful response; anything else fails the check `name`."""
    check(
        name,
        response.status_code in (200, 201),
        f"HTTP {response.status_code}: {response.text[:2000]}",
    )
    return response.json()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct(sql):
    """One value asked of kpidb directly, the truth Superset's answers are held to."""
    with psycopg2.connect(
        host=host, port=port, user=user, password=password, dbname="kpidb", sslmode="disable"
    ) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]


home = tempfile.mkdtemp(prefix="kpidb-superset-")
config = os.path.join(home, "superset_config.py")
with open(config, "w") as f:
    f.write(
        "import os\n"
        "SECRET_KEY = 'kpidb-superset-check-0123456789abcdef'\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home}/superset.db'\n"
        "WTF_CSRF_ENABLED = False\n"
        "TALISMAN_ENABLED = False\n"
        "FEATURE_FLAGS = {'ENABLE_TEMPLATE_PROCESSING': True}\n"
    )
env = dict(os.environ, SUPERSET_CONFIG_PATH=config, FLASK_APP="superset", SUPERSET_HOME=home)
env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
log = open(os.path.join(home, "superset.log"), "w")


def setup(*args):
    done = subprocess.run([superset, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        log.flush()
        print(open(log.name).read()[-4000:])
    check("superset " + " ".join(args[:2]), done.returncode == 0, f"exit {done.returncode}")


setup("db", "upgrade")
setup("fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b",
      "--email", "admin@example.com", "--password", "admin")
setup("init")

web = free_port()
server = subprocess.Popen(
    [superset, "run", "-h", "127.0.0.1", "-p", str(web), "--with-threads"],
    env=env, stdout=log, stderr=subprocess.STDOUT,
)
base = f"http://127.0.0.1:{web}"
try:
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(base + "/health", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if server.poll() is not None or time.time() > deadline:
            check("superset starts", False, open(log.name).read()[-4000:])
        time.sleep(0.5)
    check("superset starts", True)

    api = requests.Session()
    token = answered("login", api.post(base + "/api/v1/security/login", json={
        "username": "admin", "password": "admin", "provider": "db", "refresh": True,
    }))["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"

    uri = (f"postgresql+psycopg2://{user}:{urllib.parse.quote(password)}"
           f"@{host}:{port}/kpidb?sslmode=disable")
    answered("test connection", api.post(base + "/api/v1/database/test_connection", json={
        "database_name": "kpidb", "sqlalchemy_uri": uri,
    }))
    database = answered("add database", api.post(base + "/api/v1/database/", json={
        "database_name": "kpidb", "sqlalchemy_uri": uri, "expose_in_sqllab": True,
    }))["id"]

    schemas = answered("schemas", api.get(f"{base}/api/v1/database/{database}/schemas/"))
    check("schemas include public", "public" in schemas["result"], schemas)
    listed = answered("tables", api.get(
        f"{base}/api/v1/database/{database}/tables/",
        params={"q": "(force:!t,schema_name:public)"},
    ))
    names = {t["value"] for t in listed["result"]}
    for table in ("departments", "dept_scores", "indicators", "projects"):
        check(f"tables list {table}", table in names, sorted(names))

    metadata = answered("table metadata", api.get(
        f"{base}/api/v1/database/{database}/table_metadata/",
        params={"name": "dept_scores", "schema": "public"},
    ))
    columns = {c["name"] for c in metadata["columns"]}
    check("table metadata columns", {"year", "dept_code", "indicator_code", "score"} <= columns,
          metadata)
    # (Superset 6.1 passes the primary key through a converter that turns its lists
    # and strings into None, for PostgreSQL too, so only the columns can be checked.)

    table = answered("dataset on dept_scores", api.post(base + "/api/v1/dataset/", json={
        "database": database, "schema": "public", "table_name": "dept_scores",
    }))["id"]
    rows = direct("SELECT count(*) FROM dept_scores")
    scores = direct("SELECT sum(score) FROM dept_scores WHERE year = 2023")
    chart = answered("chart on dept_scores", api.post(base + "/api/v1/chart/data", json={
        "datasource": {"id": table, "type": "table"},
        "queries": [{
            "columns": ["year"],
            "metrics": ["count", {
                "expressionType": "SIMPLE", "column": {"column_name": "score"},
                "aggregate": "SUM", "label": "total",
            }],
            "orderby": [["year", True]],
            "row_limit": 1000,
        }],
        "result_format": "json", "result_type": "full",
    }))
    data = chart["result"][0]["data"]
    check("chart counts every score", sum(r["count"] for r in data) == rows, (rows, data))
    by_year = {r["year"]: r["total"] for r in data}
    check("chart sums 2023's scores",
          abs(decimal.Decimal(str(by_year.get(2023))) - decimal.Decimal(scores)) < 0.01,
          (scores, by_year))

    virtual = answered("virtual dataset on dept_ranking", api.post(
        base + "/api/v1/dataset/", json={
            "database": database, "schema": "public", "table_name": "ranking_2023",
            "sql": "SELECT * FROM dept_ranking(2023)",
        }))["id"]
    described = answered("virtual dataset columns", api.get(
        f"{base}/api/v1/dataset/{virtual}"))["result"]["columns"]
    check("virtual dataset has dept_code and total_score",
          {"dept_code", "total_score"} <= {c["column_name"] for c in described}, described)
    ranking = answered("chart on dept_ranking", api.post(base + "/api/v1/chart/data", json={
        "datasource": {"id": virtual, "type": "table"},
        "queries": [{
            "columns": ["dept_code", "total_score"], "metrics": [],
            "orderby": [["total_score", False]], "row_limit": 1000,
        }],
        "result_format": "json", "result_type": "full",
    }))["result"][0]["data"]
    check("ranking has every department", len(ranking) == expected_ranked,
          (expected_ranked, len(ranking)))
    first = {r["dept_code"]: r["total_score"] for r in ranking}
    check("ranking scores department 101",
          abs(decimal.Decimal(str(first.get("101"))) - expected_score) < decimal.Decimal("0.01"),
          (expected_score, first.get("101")))
    totals = [decimal.Decimal(str(r["total_score"])) for r in ranking]
    check("ranking in descending order", totals == sorted(totals, reverse=True), totals)

    lab = answered("sql lab", api.post(base + "/api/v1/sqllab/execute/", json={
        "database_id": database, "schema": "public", "runAsync": False,
        "sql": "SELECT count(*) AS ranked FROM dept_ranking(2023)",
    }))
    check("sql lab counts the ranking", lab["data"][0]["ranked"] == expected_ranked, lab["data"])
    templated = answered("sql lab with a template", api.post(
        base + "/api/v1/sqllab/execute/", json={
            "database_id": database, "schema": "public", "runAsync": False,
            "sql": "SELECT count(*) AS ranked FROM dept_ranking({{ year }})",
            "templateParams": '{"year": 2023}',
        }))
    check("templated sql counts the ranking",
          templated["data"][0]["ranked"] == expected_ranked, templated["data"])
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()

shutil.rmtree(home, ignore_errors=True)
print("all superset checks passed")
