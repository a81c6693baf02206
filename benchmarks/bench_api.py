"""API benchmark (STUB): throughput and latency of `recagent serve` under 1, 8 and 32 concurrent clients.

Needs the OpenAI-compatible API (a FastAPI app factory in ui/api/server.py), which is being built in
parallel and is not on this branch yet. Until it lands this benchmark reports itself as skipped; wiring it is
a matter of starting uvicorn on 127.0.0.1 with that factory and driving it with httpx at 1/8/32 clients.
"""

from __future__ import annotations

import argparse
import importlib.util

from .common import Report

API_MODULE = "recagent.ui.api.server"
CONCURRENCY = (1, 8, 32)


def api_available() -> bool:
    try:
        return importlib.util.find_spec(API_MODULE) is not None
    except ModuleNotFoundError:
        return False


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    report = Report("api", "API: throughput under 1 / 8 / 32 concurrent clients", args.quick)
    table = report.table("API throughput", ["clients", "requests/s", "p50 ms", "p95 ms", "errors"])
    if not api_available():
        report.notes.append(
            f"SKIPPED: needs the API ({API_MODULE} with a FastAPI app factory), which is not on this branch yet"
        )
        for clients in CONCURRENCY:
            table.add(clients, "skipped", "skipped", "skipped", "skipped")
        print(f"bench_api: skipped, {API_MODULE} not found")
    else:
        raise NotImplementedError(f"{API_MODULE} exists now: wire bench_api.py to its app factory")
    report.write()
    return report


if __name__ == "__main__":
    main()
