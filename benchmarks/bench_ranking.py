"""Ranking benchmark: one-pass label scoring of 20 candidates vs generative listwise ranking, real SmolLM2.

The generative baseline asks the model to write the ranked labels as text ("C > A > F ...") and parses them,
as RankGPT-style rerankers do; an output counts as valid when it names at least 5 distinct candidates and
nothing outside the candidate set or twice. One-pass scoring reads the label log-probabilities of one forward
pass, so its output is a permutation by construction; the benchmark checks that anyway.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Sequence
from typing import Any

from .common import Report, Stats, measure, ratio
from .fixtures import REQUESTS, USERS, backend, profile_titles, prompt_tokens, ranking_cases, recommender

LISTWISE_SYSTEM = (
    "You are a recommender system. You see a user's taste and a list of candidate items labelled with "
    "letters. Rank the candidates from most to least likely to be enjoyed by the user. Answer only with "
    "the letters in order, separated by ' > ', for example: C > A > B."
)
_LABEL = re.compile(r"\b([A-Z])\b")


def listwise_conversation(profile: Any, candidates: Sequence[Any], request: str | None) -> Any:
    from recagent.agent.prompts import ranking_conversation

    conversation = ranking_conversation(profile, candidates, request)
    user = conversation[1]["content"].replace("Answer with one letter.", "Rank all candidates, best first.")
    return [{"role": "system", "content": LISTWISE_SYSTEM}, {"role": "user", "content": user}]


def parse_listwise(text: str, size: int, need: int = 5) -> list[int] | None:
    """Candidate positions in the order the text names them, or None when the output is not usable."""
    from recagent.agent.prompts import LABELS

    labels = _LABEL.findall(text)
    allowed = set(LABELS[:size])
    if any(label not in allowed for label in labels) or len(set(labels)) != len(labels):
        return None
    order = [LABELS.index(label) for label in labels]
    return order if len(order) >= min(need, size) else None


def is_permutation(ranked: Sequence[Any], candidates: Sequence[Any]) -> bool:
    return sorted(item.id for item, _ in ranked) == sorted(item.id for item in candidates)


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 users, one timed run each")
    args = parser.parse_args(argv)
    from recagent.agent import Ranker

    users = USERS[:3] if args.quick else USERS[:10]
    report = Report(
        "ranking", "Ranking 20 candidates: one-pass label scoring vs generative listwise", args.quick
    )
    fast = backend("auto")
    rec = recommender(fast)
    cases = ranking_cases(rec, users)
    table = report.table(
        f"Ranking 20 candidates, {len(users)} MovieLens-100k users",
        [
            "method",
            "prompt tokens",
            "p50 ms",
            "p95 ms",
            "CPU p50 ms",
            "valid outputs",
            "speed-up vs listwise",
        ],
    )

    def run_cases(fn: Any) -> tuple[Stats, list[bool]]:
        """Time ``fn(case)`` once per case after one warm-up call; collect validity."""
        fn(cases[0])
        valid: list[bool] = []
        pos = iter(range(len(cases)))

        def one() -> None:
            valid.append(bool(fn(cases[next(pos)])))

        return measure(one, repeat=len(cases), warmup=0), valid

    def listwise(case: Any) -> bool:
        profile, candidates, request = case
        text = fast.generate([listwise_conversation(profile, candidates, request)], max_new_tokens=60)[0]
        outputs.append(text)
        return parse_listwise(text, len(candidates)) is not None

    outputs: list[str] = []
    gen_stats, gen_valid = run_cases(listwise)
    gen_tokens = prompt_tokens(fast, listwise_conversation(*cases[0]))
    table.add(
        f"generative listwise, {fast.dtype} (baseline)",
        gen_tokens,
        gen_stats.p50,
        gen_stats.p95,
        gen_stats.cpu_p50,
        sum(gen_valid) / len(gen_valid),
        1.0,
    )
    print("  listwise outputs, e.g.:", [o[:60] for o in outputs[:3]])

    def one_pass(llm: Any) -> Any:
        ranker = Ranker(llm)

        def run(case: Any) -> bool:
            profile, candidates, request = case
            return is_permutation(ranker.rank(profile, candidates, request), candidates)

        return run

    from recagent.agent.prompts import ranking_conversation

    slow = backend("float32", prefix_cache=0)
    variants: list[tuple[str, Any, int]] = [
        ("one-pass, float32, 10 liked titles (skeleton)", slow, 10),
        ("one-pass, float32, 5 liked titles", slow, 5),
    ]
    fast_no_cache = backend(fast.dtype, prefix_cache=0)
    fast_no_cache._model, fast_no_cache._tokenizer = fast.model, fast.tokenizer
    variants.append((f"one-pass, {fast.dtype}, 5 liked titles", fast_no_cache, 5))
    for name, llm, titles in variants:
        with profile_titles(titles):
            stats, valid = run_cases(one_pass(llm))
            tokens = prompt_tokens(llm, ranking_conversation(*cases[0]))
        table.add(
            name,
            tokens,
            stats.p50,
            stats.p95,
            stats.cpu_p50,
            sum(valid) / len(valid),
            ratio(gen_stats.p50, stats.p50),
        )
        print(f"  {name}: p50 {stats.p50:.0f} ms")

    # A follow-up turn: same users, a new request; the system prompt and the profile come from the KV cache.
    fast._prefixes.clear()
    follow = ranking_cases(rec, users, REQUESTS[0])
    reused: list[int] = []
    pos = iter(range(len(follow)))
    valid_follow: list[bool] = []

    def follow_up() -> None:
        i = next(pos)
        Ranker(fast).rank(*cases[i])  # untimed: the user's first turn fills the cache
        start_cpu, start = time.process_time(), time.perf_counter()
        ranked = Ranker(fast).rank(*follow[i])
        follow_ms.append((time.perf_counter() - start) * 1000)
        follow_cpu_ms.append((time.process_time() - start_cpu) * 1000)
        valid_follow.append(is_permutation(ranked, follow[i][1]))
        reused.append(fast.last_reused_tokens)

    follow_ms: list[float] = []
    follow_cpu_ms: list[float] = []
    for _ in follow:
        follow_up()
    stats = Stats(tuple(follow_ms), tuple(follow_cpu_ms))

    tokens = prompt_tokens(fast, ranking_conversation(*follow[0]))
    table.add(
        f"one-pass, {fast.dtype}, 5 titles, prefix KV cache (follow-up turn)",
        f"{tokens} ({sum(reused) / len(reused):.0f} cached)",
        stats.p50,
        stats.p95,
        stats.cpu_p50,
        sum(valid_follow) / len(valid_follow),
        ratio(gen_stats.p50, stats.p50),
    )
    table.notes.append(
        "one timed run per user after one warm-up call; 'valid outputs' = usable ranked list (listwise: >= 5 "
        "distinct labels, none outside the candidates, no repeats; one-pass: a permutation of the candidates); "
        "CPU p50 is process CPU time (close to idle-machine wall time for 1 thread); timings taken on a "
        "2-core machine shared with other jobs"
    )
    report.plot_bars(
        "latency",
        [str(m).split(" (")[0] for m in table.column("method")],
        {"wall p50 ms": table.column("p50 ms"), "CPU p50 ms": table.column("CPU p50 ms")},
        "ms per ranking (log)",
        table.title,
        log=True,
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
