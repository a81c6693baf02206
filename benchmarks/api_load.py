"""Load on a running `recagent serve`: N concurrent clients for a fixed time, loopback only, stops by itself.

Each client loops over a mix of real calls (recommendations for a known user with a query, a chat completion,
a profile read, an event post) and records status and latency. Any transport error or non-2xx is an error;
429 is counted separately as back-pressure.

    .venv/bin/recagent serve --no-llm --port 8000 &
    .venv/bin/python -m benchmarks.api_load --url http://127.0.0.1:8000 [--clients 50] [--duration 60]

Prints a table and writes benchmarks/results/api_load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results"
QUERIES = ("a funny movie", "something dark and tense", "a classic western", "sci-fi with big ideas", "")


@dataclass
class LoadReport:
    clients: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def throttled(self) -> int:
        return self.statuses.get("429", 0)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def table(self) -> str:
        rows = [
            ("clients", str(self.clients)),
            ("duration (s)", f"{self.duration_s:.1f}"),
            ("requests", str(self.requests)),
            ("requests/s", f"{self.requests / self.duration_s:.1f}"),
            ("errors (non-2xx except 429, transport)", str(len(self.errors))),
            ("429 back-pressure", str(self.throttled)),
            ("p50 latency (ms)", f"{self.percentile(50):.0f}"),
            ("p95 latency (ms)", f"{self.percentile(95):.0f}"),
            ("p99 latency (ms)", f"{self.percentile(99):.0f}"),
            ("statuses", ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def _request(rng: random.Random, n: int) -> tuple[str, str, dict[str, object] | None]:
    user = str(rng.randint(1, 943))
    kind = n % 4
    if kind == 0:
        return "POST", "/v1/recommendations", {"user_id": user, "query": rng.choice(QUERIES) or None, "k": 5}
    if kind == 1:
        query = rng.choice(QUERIES) or "anything"
        return (
            "POST",
            "/v1/chat/completions",
            {"model": "recagent", "user": user, "messages": [{"role": "user", "content": query}]},
        )
    if kind == 2:
        return "GET", f"/v1/users/{user}/profile", None
    event = {"user_id": f"load-{user}", "item_id": str(rng.randint(1, 1682)), "rating": rng.randint(1, 5)}
    return "POST", "/v1/events", {"events": [event]}


async def _client(
    i: int, base_url: str, key: str | None, stop_at: float, report: LoadReport, timeout: float
) -> None:
    rng = random.Random(i)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as client:
        n = i
        while time.monotonic() < stop_at:
            method, path, body = _request(rng, n)
            n += 1
            start = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                report.statuses["transport"] += 1
                report.errors.append(f"{method} {path}: {exc.__class__.__name__}")
                continue
            report.latencies_ms.append((time.perf_counter() - start) * 1000)
            report.statuses[str(response.status_code)] += 1
            if response.status_code >= 300 and response.status_code != 429:
                report.errors.append(f"{method} {path}: {response.status_code} {response.text[:200]}")


async def _run(base_url: str, clients: int, duration_s: float, key: str | None, timeout: float) -> LoadReport:
    report = LoadReport(clients=clients, duration_s=duration_s)
    stop_at = time.monotonic() + duration_s
    await asyncio.gather(*(_client(i, base_url, key, stop_at, report, timeout) for i in range(clients)))
    return report


def run_load(
    base_url: str, clients: int = 50, duration_s: float = 60.0, key: str | None = None, timeout: float = 60.0
) -> LoadReport:
    """Run the load and return what happened; the last requests end at most ``timeout`` after the deadline."""
    if not base_url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise ValueError("the load test only targets a server on this machine (loopback)")
    return asyncio.run(_run(base_url, clients, duration_s, key, timeout))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running recagent serve (loopback)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--key", help="API key, if the server has RECAGENT_API_KEYS")
    args = parser.parse_args()
    report = run_load(args.url, args.clients, args.duration, args.key)
    table = report.table()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api_load.md").write_text(
        f"# API load against {args.url}\n\n| what | value |\n|---|---|\n{table}\n"
    )


if __name__ == "__main__":
    main()
