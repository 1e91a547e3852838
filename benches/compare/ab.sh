#!/usr/bin/env bash
# Two kpidb binaries side by side on one warehouse: each question file is timed with
# `kpidb bench --runs RUNS` by OLD, NEW, OLD, NEW in turn, so a change of the machine's
# speed during the run falls on both. Prints, per question, the four medians and, after
# each slash, the part of the median in physical planning (ms).
#
#   benches/compare/ab.sh OLD NEW WAREHOUSE RUNS QUESTION.sql...
set -euo pipefail
if [ $# -lt 5 ]; then
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
old=$1 new=$2 warehouse=$3 runs=$4
shift 4
name="$(basename "$(dirname "$warehouse")")"
for question in "$@"; do
    line="$(basename "$question" .sql) $name:"
    for _ in 1 2; do
        for binary in "$old" "$new"; do
            json=$("$binary" --data "$warehouse" bench --runs "$runs" "$question" | tail -1)
            line="$line $(python3 -c 'import json, sys
j = json.loads(sys.argv[1])
print("%.2f/%.2f" % (j["median_ms"], j["physical_median_ms"]))' "$json")"
        done
    done
    echo "$line"
done
