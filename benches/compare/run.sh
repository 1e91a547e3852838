#!/usr/bin/env bash
# The end-to-end comparison of kpidb with plain DataFusion and DuckDB
# (benches/compare/README.md): builds kpidb in release, makes the Python
# virtualenv with DuckDB, then runs run.py with the same arguments.
#
#   benches/compare/run.sh [--scales 1m,10m,100m] [--runs 5] [--work DIR] [run.py options]
#
# --kpidb PATH (or KPIDB_BIN=PATH) uses that binary and skips the build; --help and
# --dry-run build nothing and install nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${KPIDB_BENCH_VENV:-$HOME/.cache/kpidb/bench-venv}"

python_for_driver() {
    if [ -x "$VENV/bin/python" ]; then echo "$VENV/bin/python"; else echo python3; fi
}

dry_run=0
own_binary="${KPIDB_BIN:-}"
previous=""
for arg in "$@"; do
    case "$arg" in
        -h|--help) exec "$(python_for_driver)" "$HERE/run.py" --help ;;
        --dry-run) dry_run=1 ;;
        --kpidb=*) own_binary="${arg#--kpidb=}" ;;
    esac
    [ "$previous" = "--kpidb" ] && own_binary="$arg"
    previous="$arg"
done

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
    /*) ;;
    *) target_dir="$ROOT/$target_dir" ;;  # cargo runs from the repository root below
esac
binary="${own_binary:-$target_dir/release/kpidb}"
extra=()
# A --kpidb of the caller's own is passed on as given; otherwise name the one built here.
case " $* " in
    *" --kpidb "*|*" --kpidb="*) ;;
    *) extra=(--kpidb "$binary") ;;
esac

if [ "$dry_run" = 1 ]; then
    [ -x "$VENV/bin/python" ] || echo "# would create $VENV with benches/compare/requirements.txt"
    [ -n "$own_binary" ] || echo "# would build: (cd $ROOT && cargo build --release)"
    exec "$(python_for_driver)" "$HERE/run.py" "$@" "${extra[@]}"
fi

stamp="$VENV/.kpidb-requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
    echo "== Python virtualenv $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$stamp"
fi

if [ -z "$own_binary" ]; then
    echo "== cargo build --release (target directory $target_dir)" >&2
    (cd "$ROOT" && cargo build --release)
fi

exec "$VENV/bin/python" "$HERE/run.py" "$@" "${extra[@]}"
