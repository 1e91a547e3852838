#!/usr/bin/env python3
"""A small query's latency under `kpidb serve` while clients run runaway queries.

Starts `kpidb serve` (PostgreSQL only, on a free loopback port), opens N clients that
each run a cross join of dept_scores with itself three times over, again and again
(each runs until the query timeout stops it), and times `SELECT count(*) FROM
departments` from one more client, 60 times, 50 ms apart. Prints the latencies with no
runaways and with N, and the server's CPU use, so the runaways are seen to be running.

    python3 benches/compare/runaways.py --kpidb target/release/kpidb [--runaways 4]

Needs psycopg (benches/compare/run.sh's virtual environment has it:
~/.cache/kpidb/bench-venv/bin/python).
"""

import argparse
import os
import socket
import statistics
import subprocess
import threading
import time

import psycopg

RUNAWAY = (
    "SELECT sum(a.score * b.score * c.score) "
    "FROM dept_scores a CROSS JOIN dept_scores b CROSS JOIN dept_scores c"
)
SMALL = "SELECT count(*) FROM departments"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port):
    return psycopg.connect(f"host=127.0.0.1 port={port} user=bench", autocommit=True)


def wait_for(port, server):
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"kpidb serve exited with {server.returncode}")
        try:
            connect(port).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise SystemExit("kpidb serve did not accept connections in 30 s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latencies(port, runs=60):
    conn = connect(port)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        conn.execute(SMALL).fetchall()
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    conn.close()
    return sorted(times)


def report(label, times, cpu):
    p90 = times[int(len(times) * 0.9)]
    print(
        f"| {label} | {statistics.median(times):.2f} | {p90:.2f} | {times[-1]:.2f} | {cpu:.0f}% |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kpidb", required=True, help="the kpidb binary")
    parser.add_argument("--data", help="warehouse (default: the shipped sample)")
    parser.add_argument("--runaways", type=int, default=4)
    args = parser.parse_args()

    port = free_port()
    command = [args.kpidb]
    if args.data:
        command += ["--data", args.data]
    command += ["serve", "--pg-listen", f"127.0.0.1:{port}", "--http-listen", "off",
                "--query-timeout", "30s"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, server)
        print(f"`{SMALL}` over PostgreSQL, ms, 60 runs")
        print()
        print("| runaway clients | median | p90 | max | server CPU |")
        print("|---|---:|---:|---:|---:|")
        before, start = cpu_seconds(server.pid), time.monotonic()
        times = latencies(port)
        report("0", times, 100 * (cpu_seconds(server.pid) - before) / (time.monotonic() - start))

        stop = threading.Event()

        def runaway():
            conn = connect(port)
            while not stop.is_set():
                try:
                    conn.execute(RUNAWAY).fetchall()
                except psycopg.Error:
                    pass

        threads = [threading.Thread(target=runaway, daemon=True) for _ in range(args.runaways)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before, start = cpu_seconds(server.pid), time.monotonic()
        times = latencies(port)
        report(str(args.runaways), times,
               100 * (cpu_seconds(server.pid) - before) / (time.monotonic() - start))
        stop.set()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
