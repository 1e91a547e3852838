#!/usr/bin/env python3
"""Two kpidb binaries compared on small questions, where one run's median moves with the
machine as much as a change does: each question file is timed with `kpidb bench --runs
RUNS` ROUNDS times by each binary, in turns (old, new, then new, old, ...), and the
median of each binary's medians is printed, with that of its planning time (SQL to
logical plan, optimising and physical planning).

    python3 benches/compare/alternate.py OLD NEW WAREHOUSE RUNS ROUNDS QUESTION.sql...
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path


def timed(binary, warehouse, runs, question):
    """The median and planning median (ms) of one `kpidb bench` run."""
    out = subprocess.run(
        [binary, "--data", warehouse, "bench", "--runs", runs, question],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    j = json.loads(out)
    planning = j["plan_median_ms"] + j["optimize_median_ms"] + j["physical_median_ms"]
    return j["median_ms"], planning


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    old, new, warehouse, runs, rounds = sys.argv[1:6]
    name = Path(warehouse).parent.name
    for question in sys.argv[6:]:
        times = {old: [], new: []}
        planning = {old: [], new: []}
        for turn in range(int(rounds)):
            for binary in (old, new) if turn % 2 == 0 else (new, old):
                median, plan = timed(binary, warehouse, runs, question)
                times[binary].append(median)
                planning[binary].append(plan)
        o, n = statistics.median(times[old]), statistics.median(times[new])
        print(f"{Path(question).stem} {name}: old {o:.3f} new {n:.3f} new/old {n / o:.2f}"
              f" planning old {statistics.median(planning[old]):.3f}"
              f" new {statistics.median(planning[new]):.3f}", flush=True)


if __name__ == "__main__":
    main()
