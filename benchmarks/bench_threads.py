"""Thread discipline: a real `recagent serve` (SmolLM2 justifying 5 picks) on a quiet machine and with one other
busy process on the cores — the normal case for a server — under three thread settings, in the same run.

The served default (every core, idle OpenMP threads passive) against the same core count with spinning threads
(``OMP_WAIT_POLICY=ACTIVE``, what OpenMP does unless told) and against one thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from .bench_api import start_server, stop_server
from .common import Report, environment_note, percentile

SETTINGS = {
    "served default (all cores, passive)": {},
    "all cores, spinning threads": {"OMP_WAIT_POLICY": "ACTIVE"},
    "1 thread": {"RECAGENT_THREADS": "1"},
}


def time_requests(url: str, n: int, justify: bool) -> list[float]:
    import httpx

    body = {"user_id": "1", "query": "a comedy", "k": 5, "justify": justify}
    httpx.post(url + "/v1/recommendations", json=body, timeout=900).raise_for_status()  # warm-up
    latencies = []
    for i in range(n):
        body["user_id"] = str(2 + i)
        start = time.perf_counter()
        httpx.post(url + "/v1/recommendations", json=body, timeout=900).raise_for_status()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 requests per cell instead of 8")
    parser.add_argument("--index", help="serve this index folder (default: the ml-100k served index)")
    args = parser.parse_args(argv)
    n = 3 if args.quick else 8
    report = Report(
        "threads", "Thread discipline: served defaults with and without a competing process", args.quick
    )
    report.notes.append(environment_note())
    report.notes.append(f"POST /v1/recommendations k=5, 1 client, {n} requests per cell after a warm-up; "
                        "background load = one `while True: pass` Python process")  # fmt: skip
    table = report.table(
        "p50 latency (ms)",
        ["setting", "justify", "quiet p50", "busy p50", "busy / quiet", "busy vs served default"],
    )
    extra = ["--index", args.index] if args.index else []
    cells: dict[tuple[str, bool, bool], float] = {}
    for busy in (False, True):
        background = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for name, env in SETTINGS.items():
                proc, url = start_server(False, env, extra)
                try:
                    for justify in (False, True):
                        cells[name, justify, busy] = percentile(time_requests(url, n, justify), 50)
                finally:
                    stop_server(proc)
        finally:
            if background is not None:
                background.kill()
    default = next(iter(SETTINGS))
    for name in SETTINGS:
        for justify in (False, True):
            quiet, busy_ms = cells[name, justify, False], cells[name, justify, True]
            table.add(name, "yes" if justify else "no", quiet, busy_ms, busy_ms / quiet,
                      busy_ms / cells[default, justify, True])  # fmt: skip
    report.plot_bars(
        "latency",
        [f"{name}\njustify={'yes' if j else 'no'}" for name in SETTINGS for j in (False, True)],
        {
            "quiet": [cells[name, j, False] for name in SETTINGS for j in (False, True)],
            "one busy process": [cells[name, j, True] for name in SETTINGS for j in (False, True)],
        },
        "p50 latency (ms)",
        "recagent serve, quiet vs one competing process",
        log=True,
    )
    report.write()
    return report


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main(sys.argv[1:])
