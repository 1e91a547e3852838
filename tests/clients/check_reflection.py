"""SQLAlchemy reflection against a running `kpidb serve`, with the driver named by
KPIDB_SA_DRIVER (psycopg2 or psycopg): every inspector call a BI tool makes, then
MetaData.reflect() and Table(..., autoload_with=...). The data model's keys must come
back as primary keys, its references as foreign keys, and tables and columns with
their descriptions. Prints one line per check and exits non-zero on the first failure."""

import os
import sys

import sqlalchemy

driver = os.environ.get("KPIDB_SA_DRIVER", "psycopg2")
label = f"SQLAlchemy {sqlalchemy.__version__} + {driver}"
url = sqlalchemy.engine.URL.create(
    f"postgresql+{driver}",
    username=os.environ["KPIDB_PG_USER"],
    password=os.environ["KPIDB_PG_PASSWORD"],
    host=os.environ["KPIDB_PG_HOST"],
    port=int(os.environ["KPIDB_PG_PORT"]),
    database=os.environ.get("KPIDB_PG_DATABASE", "kpidb"),
    query={"sslmode": "disable"},
)
engine = sqlalchemy.create_engine(url)


def check(name, ok, detail=""):
    if not ok:
        print(f"FAIL {label}: {name}: {detail}")
        sys.exit(1)
    print(f"ok   {label}: {name}")


def attempt(name, call):
    try:
        return call()
    except Exception as e:  # the failure is the finding: say which call and why
        check(name, False, f"{type(e).__name__}: {e}")


inspector = sqlalchemy.inspect(engine)
schemas = attempt("get_schema_names", inspector.get_schema_names)
check("get_schema_names", "public" in schemas, schemas)
tables = set(attempt("get_table_names", inspector.get_table_names))
check("get_table_names", {"departments", "dept_scores", "indicators", "projects"} <= tables, sorted(tables))
views = attempt("get_view_names", inspector.get_view_names)
check("get_view_names", isinstance(views, list), views)

columns = attempt("get_columns", lambda: inspector.get_columns("dept_scores"))
by_name = {c["name"]: c for c in columns}
check("get_columns", {"year", "dept_code", "indicator_code", "score"} <= set(by_name), sorted(by_name))
check("get_columns types", isinstance(by_name["score"]["type"], sqlalchemy.Numeric), by_name["score"]["type"])
check("get_columns nullable", by_name["score"]["nullable"] is False, by_name["score"])
check("get_columns comment", bool(by_name["score"].get("comment")), by_name["score"])

pk = attempt("get_pk_constraint", lambda: inspector.get_pk_constraint("dept_scores"))
check("get_pk_constraint", pk["constrained_columns"] == ["year", "dept_code", "indicator_code"], pk)
check("get_pk_constraint name", pk["name"] == "dept_scores_pkey", pk)

fks = attempt("get_foreign_keys", lambda: inspector.get_foreign_keys("dept_scores"))
targets = sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"])) for f in fks)
check(
    "get_foreign_keys",
    targets == [(("dept_code",), "departments", ("dept_code",)), (("indicator_code",), "indicators", ("indicator_code",))],
    fks,
)
fks = attempt("get_foreign_keys (composite)", lambda: inspector.get_foreign_keys("project_scores"))
composite = [f for f in fks if f["referred_table"] == "projects"]
check("get_foreign_keys (composite)", [f["constrained_columns"] for f in composite] == [["year", "project_code"]], fks)
fks = attempt("get_foreign_keys (self)", lambda: inspector.get_foreign_keys("departments"))
check("get_foreign_keys (self)", [(f["constrained_columns"], f["referred_table"]) for f in fks] == [(["parent_code"], "departments")], fks)

indexes = attempt("get_indexes", lambda: inspector.get_indexes("dept_scores"))
check("get_indexes", isinstance(indexes, list), indexes)
uniques = attempt("get_unique_constraints", lambda: inspector.get_unique_constraints("dept_scores"))
check("get_unique_constraints", isinstance(uniques, list), uniques)
comment = attempt("get_table_comment", lambda: inspector.get_table_comment("dept_scores"))
check("get_table_comment", bool(comment.get("text")), comment)
checks = attempt("get_check_constraints", lambda: inspector.get_check_constraints("dept_scores"))
check("get_check_constraints", isinstance(checks, list), checks)

metadata = sqlalchemy.MetaData()
attempt("MetaData.reflect()", lambda: metadata.reflect(bind=engine))
check("MetaData.reflect()", tables <= set(metadata.tables), sorted(metadata.tables))
scores = metadata.tables["dept_scores"]
check("MetaData.reflect() keys", [c.name for c in scores.primary_key.columns] == ["year", "dept_code", "indicator_code"], scores.primary_key)
check(
    "MetaData.reflect() references",
    {fk.target_fullname for fk in scores.foreign_keys} == {"departments.dept_code", "indicators.indicator_code"},
    scores.foreign_keys,
)
table = attempt(
    "Table(autoload_with)",
    lambda: sqlalchemy.Table("departments", sqlalchemy.MetaData(), autoload_with=engine),
)
check("Table(autoload_with)", "dept_code" in table.c and table.comment, (list(table.c.keys()), table.comment))
with engine.connect() as conn:
    count = attempt("select through the reflected table", lambda: conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(table)).scalar())
    check("select through the reflected table", count > 0, count)
print(f"all reflection checks passed: {label}")
