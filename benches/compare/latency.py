"""Latency of repeated questions through `kpidb serve`, as a client sees it.

Starts `kpidb serve` on free loopback ports over a warehouse, then sends each
question RUNS times over one HTTP connection (`POST /api/sql`) and over one
PostgreSQL connection in the simple query protocol (psycopg's client-side cursor, as
psycopg2, Superset and psql send SQL), and prints the median milliseconds of each
after the first ten, as JSON.

    python benches/compare/latency.py KPIDB_BINARY WAREHOUSE [RUNS]

Needs psycopg (tests/clients/requirements.txt).
"""

import http.client
import json
import pathlib
import socket
import statistics
import subprocess
import sys
import time

import psycopg

QUESTIONS = pathlib.Path(__file__).parent / "questions"
WARM_UP = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary, warehouse = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    http_port, pg_port = free_port(), free_port()
    server = subprocess.Popen(
        [binary, "--data", warehouse, "serve",
         "--http-listen", f"127.0.0.1:{http_port}", "--pg-listen", f"127.0.0.1:{pg_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", http_port)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        web = http.client.HTTPConnection("127.0.0.1", http_port)
        pg = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=kpidb dbname=kpidb",
                             autocommit=True, cursor_factory=psycopg.ClientCursor)
        medians = {}
        for name in ("exante", "grades", "ranking"):
            sql = (QUESTIONS / f"{name}.kpidb.sql").read_text()
            for protocol in ("http", "pg"):
                times = []
                for _ in range(runs + WARM_UP):
                    started = time.perf_counter()
                    if protocol == "http":
                        web.request("POST", "/api/sql", body=sql.encode(),
                                    headers={"Content-Type": "text/plain"})
                        answer = web.getresponse()
                        answer.read()
                        if answer.status != 200:
                            sys.exit(f"{name} over HTTP: status {answer.status}")
                    else:
                        with pg.cursor() as cursor:
                            cursor.execute(sql)
                            cursor.fetchall()
                    times.append((time.perf_counter() - started) * 1000)
                medians[f"{name}/{protocol}"] = round(statistics.median(times[WARM_UP:]), 2)
        print(json.dumps(medians))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
