"""Real Python clients against a running `kpidb serve`: psycopg (simple, bound
parameters, binary results, Decimal), SQLAlchemy's inspector and pandas.read_sql
over psycopg2, Superset's default PostgreSQL driver (what Superset does on connect). Settings come from the environment; prints one
line per check and exits non-zero on the first failure."""

import decimal
import os
import sys

import pandas
import psycopg
import psycopg2  # noqa: F401  (SQLAlchemy loads it by name)
import sqlalchemy

host = os.environ["KPIDB_PG_HOST"]
port = int(os.environ["KPIDB_PG_PORT"])
user = os.environ["KPIDB_PG_USER"]
password = os.environ["KPIDB_PG_PASSWORD"]
expected_score = decimal.Decimal(os.environ["KPIDB_EXPECTED_SCORE"])
expected_ranked = int(os.environ["KPIDB_EXPECTED_RANKED"])
tables = {
    "departments", "dept_scores", "evaluations", "exante_reviews",
    "indicators", "project_scores", "projects", "unit_budgets",
}


def check(name, ok, detail=""):
    if not ok:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


dsn = psycopg.conninfo.make_conninfo(
    host=host, port=port, user=user, password=password, dbname="kpidb", sslmode="disable"
)

with psycopg.connect(dsn, autocommit=True) as conn:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT dept_code, total_score FROM dept_ranking(2023) WHERE dept_code = %s",
            ("101",),
        )
        code, score = cur.fetchone()
        check("psycopg bound parameters", code == "101", code)
        check("psycopg Decimal", isinstance(score, decimal.Decimal), type(score))
        check("psycopg value", score == expected_score, f"{score} != {expected_score}")
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT r.total_score, r.rank FROM dept_ranking(2023) r "
            "JOIN departments d ON d.dept_code = r.dept_code WHERE r.rank >= %s ORDER BY r.rank, r.dept_code",
            (1,),
        )
        rows = cur.fetchall()
        check("psycopg binary results", len(rows) == expected_ranked, len(rows))
        check("psycopg binary Decimal", isinstance(rows[0][0], decimal.Decimal), type(rows[0][0]))

# A table function's year as a bound parameter: psycopg 3 binds on the server,
# unprepared and as a prepared statement (prepare=True).
with psycopg.connect(dsn, autocommit=True) as conn:
    for prepare in (False, True):
        row = conn.execute(
            "SELECT count(*) FROM dept_ranking(%s)", (2023,), prepare=prepare
        ).fetchone()
        check(f"psycopg table-function parameter (prepare={prepare})", row[0] == expected_ranked, row)
    row = conn.execute("SELECT count(*) FROM dept_ranking(%s::text)", ("2023",)).fetchone()
    check("psycopg table-function parameter as text", row[0] == expected_ranked, row)
    # Every kind of table-function argument bound: a month, a kind, a fraction, a count.
    for sql, params, plain in [
        ("SELECT count(*) FROM monitoring_warnings(%s, %s) WHERE level = 'red'", (2023, 6),
         "SELECT count(*) FROM monitoring_warnings(2023, 6) WHERE level = 'red'"),
        ("SELECT count(*) FROM self_evaluation(%s, %s)", (2023, "dept"),
         "SELECT count(*) FROM self_evaluation(2023, 'dept')"),
        ("SELECT count(*) FROM target_deviations(%s, %s)", (2023, 0.2),
         "SELECT count(*) FROM target_deviations(2023, 0.2)"),
        ("SELECT count(*) FROM indicator_callouts(%s, %s)", (2023, 3),
         "SELECT count(*) FROM indicator_callouts(2023, 3)"),
    ]:
        for prepare in (False, True):
            got = conn.execute(sql, params, prepare=prepare).fetchone()[0]
            want = conn.execute(plain).fetchone()[0]
            check(f"psycopg bound {sql.split(' FROM ')[1].split('(')[0]} (prepare={prepare})",
                  got == want and want > 0, (got, want))
    # Repeated result names, as PostgreSQL allows, through Parse/Describe/Execute.
    cur = conn.execute(
        "SELECT count(*), count(*), current_database(), current_database() "
        "FROM dept_ranking(%s)", (2023,), prepare=True,
    )
    names = [d.name for d in cur.description]
    check("psycopg repeated result names",
          names == ["count", "count", "current_database", "current_database"], names)
    check("psycopg repeated result values",
          cur.fetchone() == (expected_ranked, expected_ranked, "kpidb", "kpidb"), names)
# Server-side cursors (DECLARE … CURSOR / FETCH / CLOSE), as psycopg runs a named
# cursor: the parameter reaches the table function, Describe gives the columns, and
# the rows come in pieces, in order.
with psycopg.connect(dsn) as conn:
    with conn.cursor(name="ranking") as cur:
        cur.execute("SELECT dept_code, rank FROM dept_ranking(%s) ORDER BY rank, dept_code", (2023,))
        names = [d.name for d in cur.description]
        check("psycopg server-side cursor columns", names == ["dept_code", "rank"], names)
        first = cur.fetchmany(3)
        rest = cur.fetchall()
        ranks = [r[1] for r in first + rest]
        check("psycopg server-side cursor rows",
              len(first) == 3 and len(first) + len(rest) == expected_ranked
              and ranks == sorted(ranks) and ranks[0] == 1, (first, len(rest)))
    try:
        conn.execute("FETCH 1 FROM no_such_cursor")
        check("FETCH from a missing cursor is refused", False)
    except psycopg.Error as e:
        check("FETCH from a missing cursor is refused",
              e.sqlstate == "34000" and "no_such_cursor" in str(e), str(e))
with psycopg.connect(dsn) as conn:  # not autocommit: psycopg opens a transaction
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM departments")
        check("psycopg in a transaction", cur.fetchone()[0] > 0)
    conn.rollback()

try:
    psycopg.connect(psycopg.conninfo.make_conninfo(dsn, password="wrong")).close()
    check("psycopg wrong password refused", False, "logged in")
except psycopg.OperationalError as e:
    check("psycopg wrong password refused", "password" in str(e), str(e))

with psycopg.connect(dsn, autocommit=True) as conn:
    try:
        conn.execute("CREATE TABLE t (a INT)")
        check("psycopg write refused", False, "CREATE TABLE ran")
    except psycopg.errors.InsufficientPrivilege as e:
        check("psycopg write refused", "read-only" in str(e), str(e))

url = sqlalchemy.engine.URL.create(
    "postgresql+psycopg2", username=user, password=password, host=host, port=port,
    database="kpidb", query={"sslmode": "disable"},
)
engine = sqlalchemy.create_engine(url)
inspector = sqlalchemy.inspect(engine)
names = set(inspector.get_table_names())
check("SQLAlchemy inspector tables", tables <= names, sorted(names))
schemas = inspector.get_schema_names()
check("SQLAlchemy inspector schemas (LIKE … ESCAPE '/')", "public" in schemas and "pg_catalog" not in schemas, schemas)
columns = {c["name"] for c in inspector.get_columns("dept_scores")}
check("SQLAlchemy inspector columns", {"year", "dept_code", "indicator_code", "score"} <= columns, columns)
frame = pandas.read_sql("SELECT * FROM dept_ranking(2023) ORDER BY rank", engine)
check("pandas.read_sql", len(frame) == expected_ranked, len(frame))
score = frame.loc[frame["dept_code"] == "101", "total_score"].iloc[0]  # pandas makes numeric a float
check("pandas values", float(score) == float(expected_score), f"{score} != {expected_score}")
frame = pandas.read_sql(
    sqlalchemy.text("SELECT dept_code, score FROM dept_scores WHERE year = :y LIMIT 5"), engine, params={"y": 2022}
)
check("pandas.read_sql with parameters", len(frame) == 5, len(frame))
# Streamed in chunks through psycopg2's named cursor (SQLAlchemy's stream_results).
chunks = list(pandas.read_sql(
    sqlalchemy.text("SELECT dept_code, rank FROM dept_ranking(:y) ORDER BY rank, dept_code"),
    engine.connect().execution_options(stream_results=True, max_row_buffer=10),
    params={"y": 2023}, chunksize=10,
))
check("pandas chunks over a server-side cursor",
      len(chunks) > 1 and sum(len(c) for c in chunks) == expected_ranked,
      [len(c) for c in chunks])
print("all python checks passed")
