"""Runs one SQL file in DuckDB over a `kpidb export --format parquet` directory, in a
process of its own so the driver can measure its peak memory.

    duck.py [--cold] PARQUET_DIR SQL_FILE RUNS RESULT_CSV
    duck.py --version

Every table directory under PARQUET_DIR becomes a view: hive-partitioned
(`year=YYYY/part-N.parquet`) tables through `hive_partitioning = true`, the others
from their plain Parquet files. A PARQUET_DIR of `-` (or one without tables) makes
no views, for SQL that reads files itself (the CSV ingest comparison).

One untimed warm-up run, then RUNS runs, each executing the SQL and fetching every
row, timed with time.perf_counter: the same as `kpidb bench`. --cold skips the
warm-up, for a first run (cold start) or a statement that must run once (COPY). The
result of the last run is written to RESULT_CSV with a header (NULL as an empty
cell). Prints one JSON line: {"times_ms": [...], "rows": N}.

Only DuckDB is imported (not pyarrow), so the peak memory is DuckDB's plus the
interpreter's.
"""

import csv
import json
import os
import sys
import time

import duckdb


def create_views(con, parquet_dir):
    """One view per table directory; returns the names made."""
    if parquet_dir == "-" or not os.path.isdir(parquet_dir):
        return []
    made = []
    for table in sorted(os.listdir(parquet_dir)):
        table_dir = os.path.join(parquet_dir, table)
        if not os.path.isdir(table_dir):
            continue
        entries = os.listdir(table_dir)
        partitioned = any(e.startswith("year=") for e in entries)
        if partitioned:
            source = (
                f"read_parquet('{sql_path(table_dir)}/**/*.parquet', hive_partitioning = true)"
            )
        elif any(e.endswith(".parquet") for e in entries):
            source = f"read_parquet('{sql_path(table_dir)}/*.parquet')"
        else:
            print(f"duck.py: {table_dir} holds no Parquet files; no view made", file=sys.stderr)
            continue
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {source}')
        made.append(table)
    return made


def sql_path(path):
    return os.path.abspath(path).replace("'", "''")


def cell(value):
    """A value as a CSV cell, written the way the engines' CSV writers do."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def main(argv):
    if argv[1:] == ["--version"]:
        print(duckdb.__version__)
        return 0
    args = argv[1:]
    cold = args[:1] == ["--cold"]
    if cold:
        args = args[1:]
    if len(args) != 4 or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    parquet_dir, sql_file, runs, result_csv = args[0], args[1], int(args[2]), args[3]
    if runs < 1:
        print("duck.py: RUNS must be at least 1", file=sys.stderr)
        return 2
    with open(sql_file, encoding="utf-8") as f:
        sql = f.read()

    con = duckdb.connect()
    create_views(con, parquet_dir)

    if not cold:
        con.execute(sql).fetchall()
    times_ms = []
    rows, columns = [], []
    for _ in range(runs):
        start = time.perf_counter()
        cursor = con.execute(sql)
        rows = cursor.fetchall()
        times_ms.append((time.perf_counter() - start) * 1000.0)
        columns = [d[0] for d in cursor.description] if cursor.description else []

    with open(result_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(v) for v in row])

    print(json.dumps({"times_ms": [round(t, 3) for t in times_ms], "rows": len(rows)}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except duckdb.Error as e:
        print(f"duck.py: DuckDB error: {e}", file=sys.stderr)
        sys.exit(1)
