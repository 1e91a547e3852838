#!/usr/bin/env python3
"""Plain SQL against kpidb's function for the same question, on one binary and one
warehouse, where a question takes a few milliseconds and one run's median moves with
the machine as much as the two differ: QUESTION.kpidb.sql and QUESTION.plain.sql are
timed with `kpidb bench --runs RUNS` ROUNDS times each, in turns (function, plain, then
plain, function, ...), and the median of each one's medians is printed with their ratio.

    python3 benches/compare/plain.py KPIDB WAREHOUSE RUNS ROUNDS QUESTION...

QUESTION names a pair in benches/compare/questions (ranking, callouts, trend).
"""

import statistics
import sys
from pathlib import Path

from alternate import timed

QUESTIONS = Path(__file__).resolve().parent / "questions"


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    binary, warehouse, runs, rounds = sys.argv[1:5]
    name = Path(warehouse).parent.name
    for question in sys.argv[5:]:
        files = [QUESTIONS / f"{question}.{kind}.sql" for kind in ("kpidb", "plain")]
        times = {file: [] for file in files}
        for turn in range(int(rounds)):
            for file in files if turn % 2 == 0 else files[::-1]:
                times[file].append(timed(binary, warehouse, runs, str(file))[0])
        function, plain = (statistics.median(times[file]) for file in files)
        print(
            f"{question} {name}: function {function:.3f} plain {plain:.3f} "
            f"plain/function {plain / function:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
