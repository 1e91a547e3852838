# Sourced by the benchmark scripts: starts a loopback Ballista cluster of kpidb's
# (one scheduler, two one-core executors, each in its own directory under $WORK) with
# $BIN, waits until both executors have reached the scheduler, and sets URL to its
# df:// address. The caller's EXIT trap stops them (kill $(jobs -p)).
start_cluster() {
    "$BIN" scheduler --bind 127.0.0.1:0 >"$WORK/scheduler.out" 2>"$WORK/scheduler.err" &
    for _ in $(seq 100); do
        grep -q "listening on" "$WORK/scheduler.out" 2>/dev/null && break
        sleep 0.1
    done
    URL="$(sed -n 's/^kpidb scheduler listening on //p' "$WORK/scheduler.out")"
    [ -n "$URL" ] || { cat "$WORK/scheduler.err"; exit 1; }
    for name in a b; do
        mkdir -p "$WORK/$name"
        (cd "$WORK/$name" && RUST_LOG=ballista_executor=info,warn exec "$BIN" executor --scheduler "$URL" \
            --bind-host 127.0.0.1 --port 0 --cores 1 --work-dir "$WORK/$name" 2>"$WORK/executor-$name.err") &
    done
    for name in a b; do
        for _ in $(seq 100); do
            grep -q "Connected to scheduler" "$WORK/executor-$name.err" 2>/dev/null && break
            sleep 0.1
        done
    done
}
