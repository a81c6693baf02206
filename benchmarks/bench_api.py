"""API benchmark: throughput and latency of a real `recagent serve` process under 1, 8 and 32 concurrent clients.

Server configurations, each against the baseline of GET /health at the same concurrency, in the same run:
the served defaults (the retriever's order: ``rank_fusion`` 0, chosen on validation), and SmolLM2 ranking
the 20 candidates (``RECAGENT_RANK_FUSION=none``) with each request alone (``RANK_BATCH=1``) and with
cross-request batching (``RANK_BATCH=8``). Then, on the served defaults, streamed chat completions with
justifications: time to the ranked list, to the first and to the last justification. Loopback only; every
load loop is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from .common import Report, percentile, ratio

CONCURRENCY = (1, 8, 32)
USERS = [str(u) for u in range(1, 201)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    no_llm: bool, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``recagent serve`` subprocess on a free loopback port with the served defaults (plus ``env``)."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "recagent.ui.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    environment = {**os.environ, "RECAGENT_API_KEYS": "", "RECAGENT_CHAT_MODE": "pipeline", **(env or {})}
    proc = subprocess.Popen(
        cmd + (["--no-llm"] if no_llm else []),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"recagent serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("recagent serve did not become healthy within 600 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def load(url: str | Sequence[str], clients: int, seconds: float, recommend: bool) -> dict[str, Any]:
    """``clients`` workers send requests back to back until ``seconds`` pass; latencies of finished requests.

    With several server URLs, client ``i`` talks to ``url[i % len(url)]`` (a round-robin load balancer)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    rng = random.Random(0)
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    urls = [url] if isinstance(url, str) else list(url)

    async def worker(client: httpx.AsyncClient, url: str) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            start = time.perf_counter()
            try:
                if recommend:
                    body = {"user_id": rng.choice(USERS), "k": 5, "justify": False}
                    resp = await client.post(url + "/v1/recommendations", json=body)
                else:
                    resp = await client.get(url + "/health")
                if resp.status_code != 200:
                    errors += 1
                    continue
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(worker(client, urls[i % len(urls)]) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) if latencies else float("nan"),
        "p95": percentile(latencies, 95) if latencies else float("nan"),
        "errors": errors,
    }


def stream_once(url: str, user: str, request: str) -> dict[str, float]:
    """One streamed chat completion with justifications: ms to the ranked list, first and last justification."""
    import json

    import httpx

    body = {
        "model": "recagent",
        "stream": True,
        "user": user,
        "messages": [{"role": "user", "content": request}],
        "recagent": {"k": 5, "justify": True},
    }
    marks: dict[str, float] = {}
    start = time.perf_counter()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = (json.loads(line[6:]).get("recagent") or {}).get("event")
            ms = (time.perf_counter() - start) * 1000
            if event == "ranked":
                marks["ranked"] = ms
            elif event == "justification":
                marks.setdefault("first", ms)
                marks["last"] = ms
    return marks


def streamed_justifications(report: Report, requests: int) -> None:
    from .fixtures import REQUESTS

    proc, url = start_server(False)
    try:
        stream_once(url, "900", REQUESTS[0])  # warm-up: both models loaded
        runs = [stream_once(url, USERS[i], REQUESTS[i % len(REQUESTS)]) for i in range(requests)]
    finally:
        stop_server(proc)
    table = report.table(
        f"Streamed chat completion with 5 justifications, served defaults, 1 client, {requests} requests",
        ["mark", "p50 ms", "p95 ms", "after ranked list p50 ms"],
    )
    ranked = [r["ranked"] for r in runs]
    for mark in ("ranked", "first", "last"):
        values = [r[mark] for r in runs if mark in r]
        after = [r[mark] - r["ranked"] for r in runs if mark in r]
        table.add(mark, percentile(values, 50), percentile(values, 95), percentile(after, 50))
    table.notes.append(
        f"wall time from the request to each SSE event; {len(ranked)} requests, random users, the bench_turn "
        "requests; the justifications are written by the served default writer"
    )


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per level, retrieval-only server")
    parser.add_argument("--seconds", type=float, help="duration of each load level")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    report = Report("api", "API: throughput and latency under 1 / 8 / 32 concurrent clients", args.quick)
    report.notes.append(
        f"real `recagent serve` subprocess on 127.0.0.1; {seconds:g} s per level; POST /v1/recommendations "
        "(k=5, justify=false, random MovieLens-100k user) vs GET /health at the same concurrency"
    )
    table = report.table(
        "API throughput",
        [
            "server",
            "clients",
            "requests",
            "req/s",
            "p50 ms",
            "p95 ms",
            "errors",
            "health req/s",
            "ratio vs health",
        ],
    )
    llm_ranked = {"RECAGENT_RANK_FUSION": "none"}
    configs: list[tuple[str, bool, dict[str, str]]] = [("retrieval only (--no-llm)", True, {})]
    if not args.quick:
        configs += [
            ("served defaults", False, {}),
            ("LLM-ranked, unbatched", False, {**llm_ranked, "RECAGENT_RANK_BATCH": "1"}),
            ("LLM-ranked, batched x8", False, {**llm_ranked, "RECAGENT_RANK_BATCH": "8"}),
        ]
    labels: list[str] = []
    recommend_rps: list[float] = []
    health_rps: list[float] = []
    for name, no_llm, env in configs:
        proc, url = start_server(no_llm, env)
        try:
            asyncio.run(load(url, 1, min(2.0, seconds), True))  # warm-up: model, index and caches
            for clients in CONCURRENCY:
                base = asyncio.run(load(url, clients, seconds, False))
                rec = asyncio.run(load(url, clients, seconds, True))
                table.add(
                    name,
                    clients,
                    rec["n"],
                    rec["rps"],
                    rec["p50"],
                    rec["p95"],
                    rec["errors"] + base["errors"],
                    base["rps"],
                    ratio(rec["rps"], base["rps"]),
                )
                labels.append(f"{name} x{clients}")
                recommend_rps.append(rec["rps"])
                health_rps.append(base["rps"])
        finally:
            stop_server(proc)
    report.plot_bars(
        "throughput",
        labels,
        {"recommend req/s": recommend_rps, "health req/s": health_rps},
        "requests per second",
        "recagent serve throughput",
        log=True,
    )
    if not args.quick:
        streamed_justifications(report, 3 if seconds < 10 else 6)
    report.write()
    return report


if __name__ == "__main__":
    main()
