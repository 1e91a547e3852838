"""End-to-end comparison of kpidb with plain DataFusion and DuckDB on the same data.

For each scale (dept_scores of about 1M, 10M or 100M rows, or `city`, the sample) it generates a warehouse
with `kpidb gen-sample`, exports it as plain Parquet with `kpidb export`, checks that
every engine gives the same answer to each question in questions/, times them, and
writes WORK/results.json (every raw number) and WORK/results.md (the tables).

The engines, per question NAME:
  kpidb          `kpidb bench --engine kpidb` on NAME.kpidb.sql (the built-in functions)
  kpidb_cli      `kpidb query -f NAME.kpidb.sql --format csv`, one process per run
  kpidb_raw      as kpidb, with `[functions] rollups = false` (the raw scores: "before")
  kpidb_plain    `kpidb bench --engine kpidb` on NAME.plain.sql (same storage, no functions)
  datafusion     `kpidb bench --engine datafusion` on NAME.plain.sql over the Parquet export
  duckdb         duck.py on NAME.plain.sql over the Parquet export

Peak memory is each child's ru_maxrss from os.wait4. On Linux that high-water mark
survives exec, so a child reports at least the driver's own peak: the driver keeps
small (standard library only; DuckDB runs in duck.py, the answer check in a child of
its own) and records its peak as driver_peak_rss_kib.

Usually started by run.sh, which builds the binary and the virtualenv first.
"""

import argparse
import collections
import csv
import datetime
import decimal
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
QUESTIONS_DIR = os.path.join(HERE, "questions")
DUCK = os.path.join(HERE, "duck.py")

QUESTIONS = ["ranking", "callouts", "trend", "grades", "exante", "scan", "filtered"]
# `city` is the shipped sample's size (about 4,600 dept_scores rows): a smoke test.
SCALES = ["city", "1m", "10m", "50m", "100m"]
# Shapes of the same rows (`kpidb gen-sample --scale SIZE-SHAPE`); standard is the size alone.
SHAPES = {
    "standard": "the generator's own shape",
    "wide": "many departments, 30 indicators, 10 years",
    "deep": "few departments, 600 indicators, 10 years",
    "long": "150 indicators, 20 years",
}
# Ingest order: every table after the tables its codes refer to.
TABLES = [
    "departments", "indicators", "dept_scores", "unit_budgets",
    "projects", "exante_reviews", "evaluations", "project_scores",
]
YEAR_TABLES = {
    "dept_scores", "unit_budgets", "projects", "exante_reviews", "evaluations", "project_scores",
}
ENGINES = ["kpidb", "kpidb_cli", "kpidb_raw", "kpidb_plain", "datafusion", "duckdb"]
ENGINE_TITLES = {
    "kpidb": "kpidb (library, functions)",
    "kpidb_cli": "kpidb CLI (functions, one process per run)",
    "kpidb_raw": "kpidb (library, functions without rollups)",
    "kpidb_plain": "kpidb engine, plain SQL",
    "datafusion": "DataFusion over Parquet, plain SQL",
    "duckdb": "DuckDB over Parquet, plain SQL",
}
# The Parquet types the export should have, as DuckDB reads them.
EXPECTED_TYPES = {
    "score": "DECIMAL(7,2)",
    "max_score": "DECIMAL(7,2)",
    "total_score": "DECIMAL(7,2)",
    "budget_amount": "DECIMAL(18,2)",
    "requested_amount": "DECIMAL(18,2)",
    "approved_amount": "DECIMAL(18,2)",
}
COLD_SQL = "SELECT count(*) FROM departments"
BEGIN_MARK = "<!-- results:begin -->"
END_MARK = "<!-- results:end -->"


class BenchError(Exception):
    """A failure the user must see: a command that failed, answers that differ."""


# ---------------------------------------------------------------------------
# Normalising and comparing answers

NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# An integer written with a leading zero ("0101") is a code, not a number.
CODE = re.compile(r"^[+-]?0\d")
SIX_PLACES = decimal.Decimal("0.000001")
DECIMAL_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)


def normalise_cell(value):
    """One cell as the text all engines must agree on: NULL and empty as "", numbers
    rounded to 6 places and written without trailing zeros ("82.50", "82.5" and 82.5
    are all "82.5"), booleans in lower case, other text unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    stripped = text.strip()
    if stripped == "" or stripped.upper() == "NULL":
        return ""
    if stripped.lower() in ("true", "false"):
        return stripped.lower()
    if NUMBER.match(stripped) and not CODE.match(stripped):
        number = decimal.Decimal(stripped).quantize(SIX_PLACES, context=DECIMAL_CONTEXT)
        if number.is_zero():
            number = abs(number)
        text = format(number, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if stripped.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return stripped.lower()
    return text


def read_result(path):
    """A result CSV as (header, normalised rows)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [tuple(normalise_cell(c) for c in row) for row in reader if row]
    return header, rows


def compare_results(question, results):
    """Compares the result files of every engine; `results` is a list of
    (engine, path), the first the reference. Returns (row count, None) when all agree,
    or (None, report): which engines agree with which, and for each answer that
    differs from the reference's, the first rows only one side has."""
    answers = collections.OrderedDict()  # sorted rows -> engines giving them
    headers, row_lists = {}, {}
    for engine, path in results:
        header, rows = read_result(path)
        headers[engine], row_lists[engine] = header, rows
        widths = {len(r) for r in rows}
        if widths - {len(header)}:
            return None, (
                f"question '{question}': {engine}'s result {path} has rows of "
                f"{sorted(widths)} cells under a header of {len(header)}"
            )
        key = (len(header), tuple(sorted(rows)))
        answers.setdefault(key, []).append(engine)
    if len(answers) == 1:
        return len(row_lists[results[0][0]]), None

    groups = list(answers.values())
    ref = groups[0][0]
    lines = [
        f"question '{question}': the engines' answers differ (cells normalised: NULL as '', "
        f"numbers to 6 places; rows compared sorted).",
        "  agreeing engines: " + " | ".join(", ".join(g) for g in groups),
    ]
    for group in groups[1:]:
        other = group[0]
        name_ref, name_other = ", ".join(groups[0]), ", ".join(group)
        if len(headers[other]) != len(headers[ref]):
            lines.append(
                f"  {name_other}: {len(headers[other])} columns where {name_ref} has "
                f"{len(headers[ref])}:\n    {ref}: {headers[ref]}\n    {other}: {headers[other]}"
            )
            continue
        only_ref = collections.Counter(row_lists[ref]) - collections.Counter(row_lists[other])
        only_other = collections.Counter(row_lists[other]) - collections.Counter(row_lists[ref])
        lines.append(
            f"  {name_other} against {name_ref}: {len(row_lists[other])} rows against "
            f"{len(row_lists[ref])}; {sum(only_ref.values())} rows only in {ref}, "
            f"{sum(only_other.values())} only in {other}."
        )
        lines.append(f"    columns: {', '.join(headers[ref])}")
        for label, extra in ((ref, only_ref), (other, only_other)):
            shown = sorted(extra.elements())[:5]
            if shown:
                lines.append(f"    first rows only in {label}:")
                lines.extend(f"      {list(r)}" for r in shown)
    lines.append("  result files:")
    lines.extend(f"    {engine}: {path}" for engine, path in results)
    return None, "\n".join(lines)


def compare_main(argv):
    """`run.py --compare-results QUESTION ENGINE=PATH...`: the answer check, run in a
    child so the driver's memory stays small. Prints the row count, or the report and
    exits 1."""
    question, pairs = argv[0], argv[1:]
    results = [tuple(p.split("=", 1)) for p in pairs]
    rows, report = compare_results(question, results)
    if report:
        print(report)
        return 1
    print(json.dumps({"rows": rows}))
    return 0


# ---------------------------------------------------------------------------
# Running children


class Child:
    """A finished child process: wall seconds, exit code, peak RSS in KiB, output."""

    def __init__(self, wall_s, returncode, maxrss_kib, stdout, stderr):
        self.wall_s = wall_s
        self.returncode = returncode
        self.maxrss_kib = maxrss_kib
        self.stdout = stdout
        self.stderr = stderr


class Runner:
    def __init__(self, dry_run, verbose):
        self.dry_run = dry_run
        self.verbose = verbose

    def run(self, cmd, *, stdout=None, cwd=None, check=True, what=None, fake_stdout=""):
        """Runs `cmd` to completion. stdout: None to capture it, a path to write it to,
        or os.devnull. Peak RSS comes from os.wait4 on this child alone."""
        cmd = [str(c) for c in cmd]
        shown = shlex.join(cmd) + (f" > {stdout}" if stdout else "")
        if self.dry_run:
            print(f"$ {shown}")
            return Child(0.0, 0, 0, fake_stdout, "")
        if self.verbose:
            log(f"$ {shown}")
        with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as captured:
            out = open(stdout, "wb") if stdout else captured
            try:
                start = time.perf_counter()
                try:
                    proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
                except OSError as e:
                    raise BenchError(f"cannot start {cmd[0]}: {e}") from e
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - start
                proc.returncode = os.waitstatus_to_exitcode(status)
            finally:
                if stdout:
                    out.close()
            err.seek(0)
            stderr_text = err.read().decode("utf-8", "replace")
            stdout_text = ""
            if not stdout:
                captured.seek(0)
                stdout_text = captured.read().decode("utf-8", "replace")
        child = Child(wall, proc.returncode, usage.ru_maxrss, stdout_text, stderr_text)
        if check and child.returncode != 0:
            tail = "\n".join(stderr_text.strip().splitlines()[-15:])
            raise BenchError(
                f"{what or 'command'} failed (exit {child.returncode}):\n  $ {shown}\n"
                + (f"  {tail}" if tail else "  (no error output)")
            )
        return child

    def discard(self, path):
        """Removes a file a step is about to write, so a step that fails to write it
        cannot leave an earlier run's file to be read as its own."""
        if not self.dry_run and os.path.exists(path):
            os.remove(path)

    def mkdir(self, path):
        if not self.dry_run:
            os.makedirs(path, exist_ok=True)

    def remove(self, path):
        if self.dry_run:
            if os.path.exists(path):
                print(f"$ rm -rf {shlex.quote(path)}")
            return
        shutil.rmtree(path, ignore_errors=True)

    def rename(self, src, dst):
        if self.dry_run:
            print(f"$ mv {shlex.quote(src)} {shlex.quote(dst)}")
            return
        os.replace(src, dst)

    def write(self, path, text):
        if self.dry_run:
            return
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def log(message):
    print(message, file=sys.stderr, flush=True)


def json_line(child, what):
    """The last JSON object line a bench child printed, checked for its fields."""
    for line in reversed(child.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(value.get("times_ms"), list) and "rows" in value:
                return value
            break
    raise BenchError(
        f"{what}: expected one JSON line {{\"times_ms\": [...], \"rows\": N}} on standard "
        f"output, got:\n  {child.stdout.strip()[:500] or '(nothing)'}"
    )


# ---------------------------------------------------------------------------
# The kpidb binary


class Kpidb:
    def __init__(self, path, runner):
        self.path = path
        self.runner = runner

    def cmd(self, *args, data=None, config=None):
        return ([self.path] + (["--data", data] if data else [])
                + (["--config", config] if config else []) + list(args))

    def check_capabilities(self, need_ingest):
        """Fails with one message naming everything this binary lacks."""
        if not os.path.isfile(self.path) or not os.access(self.path, os.X_OK):
            message = (
                f"no kpidb binary at {self.path}; build it with `cargo build --release` "
                f"(benches/compare/run.sh does) or pass --kpidb PATH"
            )
            if self.runner.dry_run:
                log(f"warning: {message}")
                return
            raise BenchError(message)
        helps = {}

        def help_of(*sub):
            if sub not in helps:
                child = subprocess.run(
                    [self.path, *sub, "--help"], capture_output=True, text=True, check=False
                )
                helps[sub] = child.stdout + child.stderr if child.returncode == 0 else None
            return helps[sub]

        top = help_of() or ""
        commands = set()
        in_commands = False
        for line in top.splitlines():
            if line.strip().lower().startswith("commands:"):
                in_commands = True
                continue
            if in_commands:
                if not line.startswith("  "):
                    in_commands = False
                    continue
                commands.add(line.split()[0])
        missing = []
        wanted = {
            "bench": ["--engine", "--runs", "--result", "--parquet"],
            "export": ["--format"],
            "gen-sample": ["--out", "--scale"] + (["--csv"] if need_ingest else []),
            "query": ["--file", "--format"],
        }
        if need_ingest:
            wanted["init"] = []
            wanted["ingest"] = []
        for sub, flags in wanted.items():
            if sub not in commands:
                missing.append(f"no `{sub}` subcommand")
                continue
            text = help_of(sub) or ""
            for flag in flags:
                if flag not in text:
                    missing.append(f"`{sub}` has no {flag} option")
        if missing and self.runner.dry_run:
            log(f"warning: the kpidb binary at {self.path} lacks: " + "; ".join(missing))
        elif missing:
            raise BenchError(
                f"the kpidb binary at {self.path} lacks what this benchmark needs:\n  - "
                + "\n  - ".join(missing)
                + "\n  It was built from an older tree: rebuild with `cargo build --release` "
                "(benches/compare/run.sh does), or pass --kpidb PATH."
            )

    def version(self):
        if self.runner.dry_run and not os.path.isfile(self.path):
            return "unknown"
        child = subprocess.run([self.path, "--version"], capture_output=True, text=True)
        return child.stdout.strip() or "unknown"


# ---------------------------------------------------------------------------
# Steps


def median(values):
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, args, runner):
        self.args = args
        self.runner = runner
        self.kpidb = Kpidb(args.kpidb, runner)
        self.python = args.python

    def step(self, message):
        """What is about to run: a comment in a dry run's listing, progress otherwise."""
        if self.runner.dry_run:
            print(f"# {message}")
        else:
            log(message)

    def report(self, message):
        """What a step measured; nothing in a dry run."""
        if not self.runner.dry_run:
            log(message)

    # -- data ---------------------------------------------------------------

    def ensure_data(self, scale, scale_dir):
        """Generates and exports the scale's data unless already there; returns the
        data facts (timings from the run that made them)."""
        warehouse = os.path.join(scale_dir, "warehouse")
        parquet = os.path.join(scale_dir, "parquet")
        facts_path = os.path.join(scale_dir, "data.json")
        facts = {}
        if os.path.isfile(facts_path):
            with open(facts_path, encoding="utf-8") as f:
                facts = json.load(f)
        if self.args.regen:
            self.runner.remove(warehouse)
            self.runner.remove(parquet)
            self.runner.remove(os.path.join(scale_dir, "csv"))
            facts = {}
        self.runner.mkdir(scale_dir)

        if not os.path.isdir(warehouse):
            partial = warehouse + ".partial"
            self.runner.remove(partial)
            self.step(f"[{scale}] generating the warehouse (kpidb gen-sample --scale {scale})")
            child = self.runner.run(
                self.kpidb.cmd("gen-sample", "--out", partial, "--scale", scale),
                what="gen-sample",
            )
            self.runner.rename(partial, warehouse)
            self.runner.remove(parquet)
            facts = {
                "generated_at": now(),
                "generated_by": self.kpidb.version(),
                "gen_s": child.wall_s,
                "gen_peak_rss_kib": child.maxrss_kib,
            }
            self.report(f"[{scale}] generated in {child.wall_s:.1f} s")
        if not os.path.isdir(parquet):
            partial = parquet + ".partial"
            self.runner.remove(partial)
            self.step(f"[{scale}] exporting Parquet (kpidb export --format parquet)")
            child = self.runner.run(
                self.kpidb.cmd("export", "--format", "parquet", partial, data=warehouse),
                what="export",
            )
            self.runner.rename(partial, parquet)
            facts["export_s"] = child.wall_s
            facts["export_peak_rss_kib"] = child.maxrss_kib
            self.report(f"[{scale}] exported in {child.wall_s:.1f} s")
        if not self.runner.dry_run:
            with open(facts_path, "w", encoding="utf-8") as f:
                json.dump(facts, f, indent=2)
        facts["warehouse_bytes"] = dir_bytes(warehouse)
        facts["parquet_bytes"] = dir_bytes(parquet)
        return warehouse, parquet, facts

    def describe_parquet(self, scale, scale_dir, parquet):
        """Rows per table and the column types DuckDB reads, both through duck.py."""
        sql_dir = os.path.join(scale_dir, "sql")
        self.runner.mkdir(sql_dir)
        present = [t for t in TABLES if os.path.isdir(os.path.join(parquet, t))]
        if self.runner.dry_run:
            present = TABLES
        missing = [t for t in TABLES if t not in present]
        if missing:
            raise BenchError(
                f"[{scale}] the Parquet export {parquet} has no directory for "
                f"{', '.join(missing)} (expected OUTDIR/<table>/…)"
            )
        for table in list(present):
            table_dir = os.path.join(parquet, table)
            if self.runner.dry_run:
                continue
            entries = os.listdir(table_dir)
            if not entries:
                log(f"[{scale}] warning: {table_dir} is empty (a table without rows?)")
                present.remove(table)
                continue
            partitioned = any(e.startswith("year=") for e in entries)
            if partitioned != (table in YEAR_TABLES):
                raise BenchError(
                    f"[{scale}] {table_dir}: expected "
                    + ("year=YYYY partition directories" if table in YEAR_TABLES
                       else "plain part-N.parquet files, no year= directories")
                )
        counts_sql = os.path.join(sql_dir, "table_rows.sql")
        self.runner.write(
            counts_sql,
            "\nUNION ALL\n".join(
                f"SELECT '{t}' AS table_name, count(*) AS row_count FROM {t}" for t in present
            ) + ";\n",
        )
        types_sql = os.path.join(sql_dir, "column_types.sql")
        self.runner.write(
            types_sql,
            "SELECT table_name, column_name, data_type FROM information_schema.columns\n"
            "ORDER BY table_name, ordinal_position;\n",
        )
        rows_csv = os.path.join(sql_dir, "table_rows.csv")
        types_csv = os.path.join(sql_dir, "column_types.csv")
        self.runner.run([self.python, DUCK, "--cold", parquet, counts_sql, 1, rows_csv],
                        what="counting rows (DuckDB)")
        self.runner.run([self.python, DUCK, "--cold", parquet, types_sql, 1, types_csv],
                        what="column types (DuckDB)")
        if self.runner.dry_run:
            return {}, {}, []
        with open(rows_csv, newline="", encoding="utf-8") as f:
            rows = {r["table_name"]: int(r["row_count"]) for r in csv.DictReader(f)}
        types = collections.defaultdict(dict)
        with open(types_csv, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                types[r["table_name"]][r["column_name"]] = r["data_type"]
        warnings = []
        for table, columns in types.items():
            for column, data_type in columns.items():
                want = EXPECTED_TYPES.get(column)
                if want and data_type != want:
                    warnings.append(f"{table}.{column} reads as {data_type} in DuckDB, not {want}")
            if table in YEAR_TABLES and "year" not in columns:
                warnings.append(f"{table} has no year column in DuckDB (hive partitioning)")
        for w in warnings:
            log(f"[{scale}] warning: {w}")
        return rows, dict(types), warnings

    # -- questions ----------------------------------------------------------

    def sql_of(self, question, kind):
        return os.path.join(QUESTIONS_DIR, f"{question}.{kind}.sql")

    def engine_cmd(self, engine, question, warehouse, parquet, runs, result):
        if engine == "kpidb":
            return self.kpidb.cmd(
                "bench", "--engine", "kpidb", "--runs", runs, "--result", result,
                self.sql_of(question, "kpidb"), data=warehouse,
            )
        if engine == "kpidb_raw":
            # The same functions with the rollups switched off: what they read without
            # them (the "before" of BENCHMARKS.md).
            config = os.path.join(self.args.work, "no-rollups.toml")
            if not self.runner.dry_run:
                os.makedirs(self.args.work, exist_ok=True)
                with open(config, "w", encoding="utf-8") as f:
                    f.write("[functions]\nrollups = false\n")
            return self.kpidb.cmd(
                "bench", "--engine", "kpidb", "--runs", runs, "--result", result,
                self.sql_of(question, "kpidb"), data=warehouse, config=config,
            )
        if engine == "kpidb_plain":
            return self.kpidb.cmd(
                "bench", "--engine", "kpidb", "--runs", runs, "--result", result,
                self.sql_of(question, "plain"), data=warehouse,
            )
        if engine == "datafusion":
            return self.kpidb.cmd(
                "bench", "--engine", "datafusion", "--parquet", parquet, "--runs", runs,
                "--result", result, self.sql_of(question, "plain"), data=warehouse,
            )
        if engine == "duckdb":
            return [self.python, DUCK, parquet, self.sql_of(question, "plain"), runs, result]
        raise ValueError(engine)

    def cli_cmd(self, question, warehouse):
        return self.kpidb.cmd(
            "query", "-f", self.sql_of(question, "kpidb"), "--format", "csv", data=warehouse
        )

    def check_question(self, scale, question, warehouse, parquet, out_dir):
        """Runs every engine once and compares the answers; stops on a difference."""
        results = []
        for engine in ["kpidb", "kpidb_raw", "kpidb_plain", "datafusion", "duckdb"]:
            path = os.path.join(out_dir, f"{question}.{engine}.csv")
            self.runner.discard(path)
            self.runner.run(
                self.engine_cmd(engine, question, warehouse, parquet, 1, path),
                what=f"[{scale}] {question} on {engine}",
                fake_stdout='{"times_ms": [0], "rows": 0}',
            )
            if not self.runner.dry_run and not os.path.isfile(path):
                raise BenchError(f"[{scale}] {question} on {engine} wrote no result file {path}")
            results.append((engine, path))
        cli_path = os.path.join(out_dir, f"{question}.kpidb_cli.csv")
        self.runner.discard(cli_path)
        self.runner.run(
            self.cli_cmd(question, warehouse), stdout=cli_path,
            what=f"[{scale}] {question} on the kpidb CLI",
        )
        results.insert(1, ("kpidb_cli", cli_path))
        child = self.runner.run(
            [sys.executable, os.path.abspath(__file__), "--compare-results", question]
            + [f"{engine}={path}" for engine, path in results],
            check=False,
            fake_stdout='{"rows": 0}',
        )
        if child.returncode != 0:
            raise BenchError(f"[{scale}] " + (child.stdout.strip() or child.stderr.strip()))
        return json.loads(child.stdout)["rows"]

    def time_question(self, scale, question, warehouse, parquet, out_dir, answer_rows):
        """Medians and peak RSS of every engine. The in-process engines (`kpidb bench`,
        duck.py) each run the question once untimed, then --runs times."""
        runs = self.args.runs
        timings = {}
        for engine in ENGINES:
            if engine == "kpidb_cli":
                walls, peak = [], 0
                for _ in range(runs):
                    child = self.runner.run(
                        self.cli_cmd(question, warehouse), stdout=os.devnull,
                        what=f"[{scale}] {question} on the kpidb CLI",
                    )
                    walls.append(child.wall_s * 1000.0)
                    peak = max(peak, child.maxrss_kib)
                timings[engine] = {
                    "times_ms": [round(t, 3) for t in walls],
                    "median_ms": median(walls),
                    "peak_rss_kib": peak,
                }
                continue
            path = os.path.join(out_dir, f"{question}.{engine}.timed.csv")
            self.runner.discard(path)
            child = self.runner.run(
                self.engine_cmd(engine, question, warehouse, parquet, runs, path),
                what=f"[{scale}] {question} on {engine}",
                fake_stdout=json.dumps({"times_ms": [0.0] * runs, "rows": 0}),
            )
            reported = json_line(child, f"[{scale}] {question} on {engine}")
            if reported["rows"] != answer_rows and not self.runner.dry_run:
                log(f"[{scale}] warning: {question} on {engine} reported {reported['rows']} rows "
                    f"while timed, {answer_rows} when checked")
            times = [float(t) for t in reported["times_ms"]]
            if len(times) != runs:
                raise BenchError(
                    f"[{scale}] {question} on {engine}: asked for {runs} runs, "
                    f"got {len(times)} times"
                )
            timings[engine] = {
                "times_ms": times,
                "median_ms": median(times),
                "rows": reported["rows"],
                "plan_median_ms": reported.get("plan_median_ms"),
                "peak_rss_kib": child.maxrss_kib,
                "process_wall_ms": child.wall_s * 1000.0,
            }
        return timings

    # -- cold start and ingest ---------------------------------------------

    def cold_start(self, scale, scale_dir, warehouse, parquet):
        runs = self.args.cold_runs
        kpidb_walls = []
        for _ in range(runs):
            child = self.runner.run(
                self.kpidb.cmd("query", COLD_SQL, "--format", "csv", data=warehouse),
                stdout=os.devnull, what="cold start (kpidb)",
            )
            kpidb_walls.append(child.wall_s * 1000.0)
        sql_dir = os.path.join(scale_dir, "sql")
        cold_sql = os.path.join(sql_dir, "cold_start.sql")
        self.runner.write(cold_sql, COLD_SQL + ";\n")
        duck_walls, duck_query = [], []
        for _ in range(runs):
            child = self.runner.run(
                [self.python, DUCK, "--cold", parquet, cold_sql, 1,
                 os.path.join(sql_dir, "cold_start.csv")],
                what="cold start (DuckDB)", fake_stdout='{"times_ms": [0], "rows": 0}',
            )
            duck_walls.append(child.wall_s * 1000.0)
            duck_query.append(float(json_line(child, "cold start (DuckDB)")["times_ms"][0]))
        return {
            "sql": COLD_SQL,
            "runs": runs,
            "kpidb_ms": kpidb_walls,
            "kpidb_median_ms": median(kpidb_walls),
            "duckdb_python_ms": duck_walls,
            "duckdb_python_median_ms": median(duck_walls),
            "duckdb_query_median_ms": median(duck_query),
        }

    def ingest(self, scale, scale_dir):
        """kpidb ingest of dept_scores into a fresh warehouse (after the tables it refers
        to), from the CSV and from the same rows as a hive-partitioned Parquet export,
        each a whole process with its peak RSS; against DuckDB's unchecked CSV-to-Parquet
        COPY of the same CSV."""
        ingest_dir = os.path.join(scale_dir, "ingest")
        csv_dir = os.path.join(scale_dir, "csv")
        parquet_dir = os.path.join(scale_dir, "ingest-parquet")
        complete = os.path.join(csv_dir, ".complete")
        self.runner.mkdir(ingest_dir)
        if not os.path.isfile(complete) or self.args.regen:
            source = os.path.join(ingest_dir, "source-warehouse")
            self.runner.remove(source)
            self.runner.remove(csv_dir)
            self.runner.remove(parquet_dir)
            self.step(f"[{scale}] generating CSV and Parquet for the ingest test (gen-sample --csv, export)")
            self.runner.run(
                self.kpidb.cmd("gen-sample", "--scale", scale, "--out", source, "--csv", csv_dir),
                what="gen-sample --csv",
            )
            self.runner.run(
                self.kpidb.cmd("export", "--format", "parquet", parquet_dir, data=source),
                what="export --format parquet",
            )
            self.runner.remove(source)
            self.runner.write(complete, now() + "\n")
        if not self.runner.dry_run:
            for table in TABLES:
                if not os.path.isfile(os.path.join(csv_dir, f"{table}.csv")):
                    raise BenchError(f"gen-sample --csv wrote no {csv_dir}/{table}.csv")
        target = os.path.join(ingest_dir, "warehouse")
        runs = {}
        for kind, path in [("csv", os.path.join(csv_dir, "dept_scores.csv")),
                           ("parquet", os.path.join(parquet_dir, "dept_scores"))]:
            self.step(f"[{scale}] ingest dept_scores from {kind} into a fresh warehouse")
            self.runner.remove(target)
            self.runner.run(self.kpidb.cmd("init", target), what="kpidb init")
            for table in ("departments", "indicators"):
                self.runner.run(
                    self.kpidb.cmd("ingest", table, os.path.join(csv_dir, f"{table}.csv"),
                                   data=target),
                    what=f"ingest {table}")
            child = self.runner.run(
                self.kpidb.cmd("ingest", "dept_scores", path, data=target),
                what=f"ingest dept_scores ({kind})")
            runs[kind] = {"s": child.wall_s, "peak_rss_kib": child.maxrss_kib}
            self.report(f"[{scale}] ingested dept_scores from {kind} in {child.wall_s:.2f} s, "
                        f"peak RSS {fmt_mb(child.maxrss_kib)} MB")
        self.runner.remove(target)
        scores_csv = os.path.join(csv_dir, "dept_scores.csv")
        copy_sql = os.path.join(ingest_dir, "duckdb_copy.sql")
        copy_out = os.path.join(ingest_dir, "dept_scores.duckdb.parquet")
        self.runner.write(
            copy_sql,
            f"COPY (SELECT * FROM read_csv('{sql_quote(os.path.abspath(scores_csv))}', "
            f"header = true)) TO '{sql_quote(os.path.abspath(copy_out))}' (FORMAT parquet);\n",
        )
        child = self.runner.run(
            [self.python, DUCK, "--cold", "-", copy_sql, 1,
             os.path.join(ingest_dir, "duckdb_copy.csv")],
            what="DuckDB COPY", fake_stdout='{"times_ms": [0], "rows": 0}',
        )
        self.runner.remove(copy_out)
        duck_s = float(json_line(child, "DuckDB COPY")["times_ms"][0]) / 1000.0
        rows = csv_rows(scores_csv) if not self.runner.dry_run else 0
        duck_rate = rows / duck_s if duck_s else None
        for run in runs.values():
            run["rows_per_s"] = rows / run["s"] if run["s"] else None
            run["ratio_to_duckdb"] = (run["rows_per_s"] / duck_rate
                                      if run["rows_per_s"] and duck_rate else None)
        return {
            "dept_scores_rows": rows,
            "csv_bytes": os.path.getsize(scores_csv) if not self.runner.dry_run else 0,
            "kpidb": runs,
            "duckdb_copy_s": duck_s,
            "duckdb_process_s": child.wall_s,
            "duckdb_peak_rss_kib": child.maxrss_kib,
            "duckdb_rows_per_s": duck_rate,
        }

    # -- one scale -----------------------------------------------------------

    def run_scale(self, scale):
        scale_dir = os.path.join(self.args.work, scale)
        warehouse, parquet, facts = self.ensure_data(scale, scale_dir)
        rows, types, warnings = self.describe_parquet(scale, scale_dir, parquet)
        out_dir = os.path.join(scale_dir, "results")
        self.runner.mkdir(out_dir)
        result = {
            "data": dict(facts, table_rows=rows, column_types=types, type_warnings=warnings),
            "questions": {},
        }
        for question in self.args.questions:
            self.step(f"[{scale}] {question}: checking the answers of {len(ENGINES)} engines")
            answer_rows = self.check_question(scale, question, warehouse, parquet, out_dir)
            self.report(f"[{scale}] {question}: all agree ({answer_rows} rows)")
            self.step(f"[{scale}] {question}: timing {self.args.runs} runs of each engine")
            timings = self.time_question(scale, question, warehouse, parquet, out_dir, answer_rows)
            result["questions"][question] = {"answer_rows": answer_rows, "engines": timings}
            self.report(f"[{scale}] {question}: " + ", ".join(
                f"{e} {fmt_ms(timings[e]['median_ms'])} ms" for e in ENGINES))
        self.step(f"[{scale}] cold start ({self.args.cold_runs} runs each)")
        result["cold_start"] = self.cold_start(scale, scale_dir, warehouse, parquet)
        return result


# ---------------------------------------------------------------------------
# Facts about the machine


def machine_facts(args, kpidb, runner):
    facts = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": None,
        "cpu": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kpidb_version": kpidb.version(),
        "kpidb_commit": None,
        "kpidb_tree_modified": None,
        "duckdb_version": None,
    }
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    facts["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    git = shutil.which("git")
    if git:
        head = subprocess.run([git, "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True)
        if head.returncode == 0:
            facts["kpidb_commit"] = head.stdout.strip()
            status = subprocess.run([git, "-C", REPO, "status", "--porcelain"],
                                    capture_output=True, text=True)
            facts["kpidb_tree_modified"] = bool(status.stdout.strip())
    if not runner.dry_run:
        child = subprocess.run([args.python, DUCK, "--version"], capture_output=True, text=True)
        if child.returncode != 0:
            raise BenchError(
                f"{args.python} cannot import duckdb ({child.stderr.strip()[-300:]}); "
                f"run benches/compare/run.sh, which makes the virtualenv, or pass --python"
            )
        facts["duckdb_version"] = child.stdout.strip()
    return facts


# ---------------------------------------------------------------------------
# Markdown


def fmt_ms(value):
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}"


def fmt_mb(kib):
    return "–" if not kib else f"{kib / 1024:,.0f}"


def fmt_size(n):
    mb = n / 2**20
    return f"{mb:,.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def fmt_rate(value):
    return "–" if not value else f"{value:,.0f}"


def table(header, rows, numeric=True):
    """A Markdown table; the first column left-aligned, the others right-aligned
    when numeric."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(
        "---" if i == 0 or not numeric else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results):
    config = results["config"]
    out = []
    done = [s for s in config["scales"] if s in results["scales"]]
    if not results["complete"]:
        out.append("_Incomplete run: only the scales below finished"
                   + (f"; it stopped with: {results['error'].splitlines()[0].rstrip('.')}" if results.get("error")
                      else "") + "._\n")
    out.append(
        f"Median of {config['runs']} runs after one warm-up, in milliseconds. "
        "kpidb library (its functions, reading the rollups), kpidb without rollups (the same "
        "functions with `[functions] rollups = false`: the raw scores), kpidb plain SQL (the "
        "DuckDB SQL on kpidb's warehouse), DataFusion and DuckDB are timed inside one process "
        "per engine and question (query and fetch of every row); kpidb CLI is the wall time "
        "of a whole `kpidb query --format csv` process, start-up included. "
        "kpidb / DuckDB below 1 means kpidb is faster. Peak RSS is the whole process's "
        "(DuckDB's includes the Python interpreter)."
    )
    for scale in done:
        s = results["scales"][scale]
        data = s["data"]
        rows = data.get("table_rows", {})
        size, _, shape = scale.partition("-")
        shaped = f" ({SHAPES[shape]})" if shape else ""
        out.append(f"\n### {scale}: {rows.get('dept_scores', 0):,} dept_scores rows{shaped}\n")
        body = []
        for q, qr in s["questions"].items():
            e = qr["engines"]
            lib, duck = e["kpidb"]["median_ms"], e["duckdb"]["median_ms"]
            body.append([
                q, fmt_ms(lib), fmt_ms(e["kpidb_cli"]["median_ms"]),
                fmt_ms(e["kpidb_raw"]["median_ms"]), fmt_ms(e["kpidb_plain"]["median_ms"]), fmt_ms(e["datafusion"]["median_ms"]),
                fmt_ms(duck), fmt_ratio(lib / duck if lib and duck else None),
                fmt_ratio(plain / lib if (plain := e["kpidb_plain"]["median_ms"]) and lib else None),
                fmt_mb(e["kpidb"]["peak_rss_kib"]), fmt_mb(e["duckdb"]["peak_rss_kib"]),
            ])
        out.append(table(
            ["question", "kpidb library ms", "kpidb CLI ms", "kpidb without rollups ms",
             "kpidb plain SQL ms",
             "DataFusion plain ms", "DuckDB ms", "kpidb / DuckDB", "plain SQL / library",
             "kpidb peak RSS MB", "DuckDB peak RSS MB"],
            body,
        ))
        extra = []
        if data.get("gen_s") is not None:
            extra.append(f"generated in {data['gen_s']:.1f} s")
        if data.get("export_s") is not None:
            extra.append(f"exported to Parquet in {data['export_s']:.1f} s")
        if data.get("parquet_bytes"):
            extra.append(f"Parquet {fmt_size(data['parquet_bytes'])}, "
                         f"warehouse {fmt_size(data['warehouse_bytes'])}")
        if rows:
            extra.append("rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
        if extra:
            out.append("\nData: " + "; ".join(extra) + ".")

    standard = [s for s in done if "-" not in s]
    if len(standard) > 1:
        done = standard
        out.append("\n### Growth\n")
        out.append("Median ms at each scale, and the factor from one scale to the next; "
                   "the first row is the growth of the data.\n")
        header = ["question", "engine"] + done + [
            f"{b}/{a}" for a, b in zip(done, done[1:])]
        body = []
        first_rows = [results["scales"][s]["data"].get("table_rows", {}).get("dept_scores")
                      for s in done]
        body.append(["dept_scores rows", ""] + [f"{n:,}" if n else "–" for n in first_rows]
                    + [fmt_ratio(b / a if a and b else None)
                       for a, b in zip(first_rows, first_rows[1:])])
        for q in config["questions"]:
            for engine, label in (("kpidb", "kpidb"), ("duckdb", "DuckDB")):
                ms = [results["scales"][s]["questions"].get(q, {}).get("engines", {})
                      .get(engine, {}).get("median_ms") for s in done]
                body.append([q, label] + [fmt_ms(m) for m in ms] + [
                    fmt_ratio(b / a if a and b else None) for a, b in zip(ms, ms[1:])])
        out.append(table(header, body))

    if done:
        last = (standard or done)[-1]
        out.append(f"\n### Planning and execution at {last}\n")
        out.append(
            "Median ms until the logical plan exists (parsing, table functions expanded, "
            "optimizer not yet run) and in all, for the engines timed in kpidb's process; "
            "the rest is physical planning and execution.\n")
        body = []
        for q, qr in results["scales"][last]["questions"].items():
            e = qr["engines"]
            row = [q]
            for engine in ("kpidb", "kpidb_raw", "datafusion"):
                row += [fmt_ms(e[engine].get("plan_median_ms")), fmt_ms(e[engine]["median_ms"])]
            row.append(fmt_ms(e["duckdb"]["median_ms"]))
            body.append(row)
        out.append(table(
            ["question", "kpidb plan", "kpidb all", "no rollups plan", "no rollups all",
             "DataFusion plan", "DataFusion all", "DuckDB all"], body))

    cold = [(s, results["scales"][s]["cold_start"]) for s in done
            if "cold_start" in results["scales"][s]]
    if cold:
        out.append("\n### Cold start\n")
        out.append(
            f"Median wall of {config['cold_runs']} processes running `{COLD_SQL}`. kpidb: "
            "`kpidb --data WAREHOUSE query … --format csv` (opens the warehouse). DuckDB: "
            "`python duck.py` over the Parquet export, which includes starting the Python "
            "interpreter, importing duckdb and creating the views; the query alone inside "
            "that process is given apart.\n")
        out.append(table(
            ["scale", "kpidb CLI ms", "DuckDB via python ms", "DuckDB query alone ms"],
            [[s, fmt_ms(c["kpidb_median_ms"]), fmt_ms(c["duckdb_python_median_ms"]),
              fmt_ms(c["duckdb_query_median_ms"])] for s, c in cold],
        ))

    ingest = [(s, results["ingest"][s]) for s in results.get("ingest", {})]
    if ingest:
        out.append("\n### Ingest\n")
        out.append(
            "dept_scores, the whole `kpidb ingest dept_scores FILE` process into a fresh "
            "warehouse (after departments and indicators): reading, every rule of the data "
            "model (keys unique in the file and against the warehouse, codes that must exist, "
            "0 ≤ score ≤ max_score, …), writing, one Delta commit and the rollups. From the CSV, "
            "and from the same rows as `kpidb export`'s hive-partitioned Parquet. DuckDB: the "
            "`COPY (SELECT * FROM read_csv(…)) TO '….parquet'` statement alone on the same CSV, "
            "which converts without any check. Peak RSS is the process's.\n")
        out.append(table(
            ["scale", "rows", "CSV", "kpidb CSV s", "kpidb CSV rows/s", "peak RSS MB",
             "kpidb Parquet s", "kpidb Parquet rows/s", "peak RSS MB", "DuckDB s",
             "DuckDB rows/s", "DuckDB peak RSS MB", "CSV / DuckDB", "Parquet / DuckDB"],
            [[s, f"{i['dept_scores_rows']:,}", fmt_size(i["csv_bytes"]),
              f"{i['kpidb']['csv']['s']:.2f}", fmt_rate(i["kpidb"]["csv"]["rows_per_s"]),
              fmt_mb(i["kpidb"]["csv"]["peak_rss_kib"]),
              f"{i['kpidb']['parquet']['s']:.2f}", fmt_rate(i["kpidb"]["parquet"]["rows_per_s"]),
              fmt_mb(i["kpidb"]["parquet"]["peak_rss_kib"]),
              f"{i['duckdb_copy_s']:.2f}", fmt_rate(i["duckdb_rows_per_s"]),
              fmt_mb(i["duckdb_peak_rss_kib"]),
              fmt_ratio(i["kpidb"]["csv"]["ratio_to_duckdb"]),
              fmt_ratio(i["kpidb"]["parquet"]["ratio_to_duckdb"])]
             for s, i in ingest],
        ))

    m = results["machine"]
    commit = m["kpidb_commit"] or "unknown"
    if m["kpidb_tree_modified"]:
        commit += " (with uncommitted changes)"
    out.append("\n### Machine\n")
    out.append(table(["", ""], [
        ["CPU", m["cpu"] or "unknown"],
        ["cores (nproc)", m["nproc"]],
        ["memory", f"{m['memory_gib']} GiB" if m["memory_gib"] else "unknown"],
        ["kernel", m["kernel"]],
        ["kpidb", f"{m['kpidb_version']}, commit {commit}"],
        ["DuckDB", f"{m['duckdb_version']} (Python {m['python']})"],
        ["run", results["finished_at"] or results["started_at"]],
    ], numeric=False))
    return "\n".join(out) + "\n"


def benchmarks_text(path):
    """The file's text and the span between its markers; fails before any work is done."""
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except OSError as e:
        raise BenchError(f"--update-benchmarks: cannot read {path}: {e.strerror}") from e
    begin, end = current.find(BEGIN_MARK), current.find(END_MARK)
    if begin < 0 or end < 0 or end < begin:
        raise BenchError(
            f"{path} has no {BEGIN_MARK} … {END_MARK} section to replace; add the two "
            f"markers where the results belong"
        )
    return current, begin, end


def update_benchmarks(path, text):
    current, begin, end = benchmarks_text(path)
    updated = current[: begin + len(BEGIN_MARK)] + "\n" + text + current[end:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(updated)


# ---------------------------------------------------------------------------
# Helpers


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def csv_rows(path):
    """Data rows of a CSV with a header, counted without holding it in memory."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def sql_quote(text):
    return text.replace("'", "''")


def scale_list(text, what):
    values = [s.strip().lower() for s in text.split(",") if s.strip()]
    for v in values:
        if v not in SCALES:
            raise argparse.ArgumentTypeError(
                f"unknown {what} '{v}'; the scales are {', '.join(SCALES)}")
    return values


def parse_args(argv):
    default_target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    if not os.path.isabs(default_target):
        default_target = os.path.join(REPO, default_target)
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Compare kpidb (functions, CLI, plain SQL) with plain DataFusion and "
                    "DuckDB over the same data: check that all answers agree, time them, and "
                    "write WORK/results.json and WORK/results.md.",
        epilog="Usually run through benches/compare/run.sh, which builds kpidb and the "
               "Python virtualenv first.",
    )
    parser.add_argument("--scales", default="1m,10m",
                        type=lambda t: scale_list(t, "scale"),
                        help="comma-separated scales among city (the sample's size, a smoke "
                             "test), 1m, 10m, 50m, 100m (default 1m,10m)")
    parser.add_argument("--shapes", default="standard",
                        help="comma-separated data shapes, each run at every scale but city: "
                             + "; ".join(f"{k} ({v})" for k, v in SHAPES.items())
                             + " (default standard)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs per engine and question, after one warm-up (default 5)")
    parser.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "kpidb",
                                                       "bench"),
                        help="work directory for data and results (default ~/.cache/kpidb/bench)")
    parser.add_argument("--kpidb", default=os.path.join(default_target, "release", "kpidb"),
                        help="the kpidb binary (default ${CARGO_TARGET_DIR:-target}/release/kpidb)")
    parser.add_argument("--python", default=sys.executable,
                        help="Python with duckdb, for duck.py (default: this interpreter)")
    parser.add_argument("--questions", default=",".join(QUESTIONS),
                        help=f"comma-separated questions (default all: {','.join(QUESTIONS)})")
    parser.add_argument("--ingest-scales", default=None,
                        type=lambda t: scale_list(t, "ingest scale"),
                        help="scales to measure ingest at, independent of --scales (default: "
                             "those of --scales up to 10m; '' for none)")
    parser.add_argument("--cold-runs", type=int, default=10,
                        help="processes for the cold-start median (default 10)")
    parser.add_argument("--regen", action="store_true",
                        help="generate and export each scale's data again even if present")
    parser.add_argument("--update-benchmarks", metavar="FILE",
                        help="replace the text between <!-- results:begin --> and "
                             "<!-- results:end --> in FILE with results.md")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the commands it would run, run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every command")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.cold_runs < 1:
        parser.error("--cold-runs must be at least 1")
    args.questions = [q.strip() for q in args.questions.split(",") if q.strip()]
    for q in args.questions:
        if q not in QUESTIONS:
            parser.error(f"unknown question '{q}'; the questions are {', '.join(QUESTIONS)}")
    if args.ingest_scales is None:
        args.ingest_scales = [s for s in args.scales if s in ("city", "1m", "10m")]
    shapes = [t.strip().lower() for t in args.shapes.split(",") if t.strip()]
    for shape in shapes:
        if shape not in SHAPES:
            parser.error(f"unknown shape '{shape}'; the shapes are {', '.join(SHAPES)}")
    args.scales = [scale if shape == "standard" else f"{scale}-{shape}"
                   for shape in shapes for scale in args.scales
                   if shape == "standard" or scale != "city"]
    if not args.scales:
        parser.error("no scale to run: shapes other than standard need a scale other than city")
    args.work = os.path.abspath(os.path.expanduser(args.work))
    args.kpidb = os.path.abspath(os.path.expanduser(args.kpidb))
    if os.path.commonpath([args.work, REPO]) == REPO:
        parser.error(f"--work {args.work} is inside the repository; scale data stays outside it")
    for q in args.questions:
        for kind in ("kpidb", "plain"):
            path = os.path.join(QUESTIONS_DIR, f"{q}.{kind}.sql")
            if not os.path.isfile(path):
                parser.error(f"missing {path}")
    return args


def main(argv):
    if argv and argv[0] == "--compare-results":
        return compare_main(argv[1:])
    args = parse_args(argv)
    runner = Runner(args.dry_run, args.verbose)
    bench = Bench(args, runner)
    results = None
    json_path = os.path.join(args.work, "results.json")
    md_path = os.path.join(args.work, "results.md")

    def save():
        # A child's ru_maxrss is never below the driver's own peak (see the module doc).
        results["driver_peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        runner.write(json_path, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        runner.write(md_path, markdown(results))

    try:
        if args.update_benchmarks:
            benchmarks_text(args.update_benchmarks)
        bench.kpidb.check_capabilities(need_ingest=bool(args.ingest_scales))
        results = {
            "config": {
                "scales": args.scales, "runs": args.runs, "questions": args.questions,
                "ingest_scales": args.ingest_scales, "cold_runs": args.cold_runs,
                "kpidb": args.kpidb, "work": args.work,
            },
            "machine": machine_facts(args, bench.kpidb, runner),
            "started_at": now(),
            "finished_at": None,
            "complete": False,
            "error": None,
            "scales": {},
        }
        runner.mkdir(args.work)
        save()  # replaces an earlier run's results, which must not pass for this one's
        for scale in args.scales:
            results["scales"][scale] = bench.run_scale(scale)
            save()
        results["ingest"] = {}
        for scale in args.ingest_scales:
            results["ingest"][scale] = bench.ingest(scale, os.path.join(args.work, scale))
            save()
        results["complete"] = True
        results["finished_at"] = now()
        save()
        text = markdown(results)
        if args.dry_run:
            print(f"# would write {json_path} and {md_path}")
            if args.update_benchmarks:
                print(f"# would update {args.update_benchmarks} between {BEGIN_MARK} and {END_MARK}")
            return 0
        log(f"wrote {json_path} and {md_path}")
        if args.update_benchmarks:
            update_benchmarks(args.update_benchmarks, text)
            log(f"updated {args.update_benchmarks}")
        print(text)
        return 0
    except BenchError as e:
        log(f"error: {e}")
        if results is not None:
            results["error"] = str(e)
            save()
            if not args.dry_run:
                log(f"the scales finished before the error are in {json_path} and {md_path}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        if results is not None:
            results["error"] = "interrupted"
            save()
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
