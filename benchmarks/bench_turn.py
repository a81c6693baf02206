"""End-to-end turn, stage by stage: profile update → retrieve → rank → top-5 → 5 justifications.

Each turn is what the chat does when a user rates something and asks again: a new rating arrives (the profile
is rebuilt), the query vector is built and FAISS retrieves 20 candidates, SmolLM2 ranks them in one forward
pass, the top 5 are shown, then the 5 justifications are written. The baseline is the walking skeleton's
configuration (float32, 10 liked titles in the prompt, no prefix cache, one batched transformers ``generate``),
run in the same process on the same turns. A second table compares the justification writers alone.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import Report, percentile, ratio
from .fixtures import REQUESTS, USERS, backend, profile_titles, recommender

STAGES = (
    "profile update",
    "retrieve",
    "rank",
    "time to ranked list",
    "justify (5)",
    "time to last justification",
)
# Process CPU time of the same spans: with one thread, what an idle core would take on this shared machine.
CPU_STAGES = ("CPU: time to ranked list", "CPU: time to last justification")


def run_turns(rec: Any, users: tuple[str, ...], turns: int) -> dict[str, list[float]]:
    from recagent.agent import RecommendationRequest
    from recagent.retrieval import Interaction

    times: dict[str, list[float]] = {stage: [] for stage in (*STAGES, *CPU_STAGES)}
    for user in users:
        for turn in range(turns):
            query = REQUESTS[turn % len(REQUESTS)]
            request = RecommendationRequest(user_id=user, query=query, k=5)
            cpu_start = time.process_time()
            start = time.perf_counter()
            # The user just rated the previous turn's pick (or a retrieved item on the first turn).
            profile = rec.profile(user)
            liked = rec.retrieve(profile, request)[0][0]
            rec.add_events([Interaction(user_id=user, item_id=liked.id, rating=5.0, timestamp=2e9 + turn)])
            rec.profile(user)
            update_ms = (time.perf_counter() - start) * 1000
            t = time.perf_counter()
            profile, result = rec.rank(request)
            ranked_ms = (time.perf_counter() - t) * 1000
            cpu_ranked_ms = (time.process_time() - cpu_start) * 1000
            t = time.perf_counter()
            rec.justify(profile, result, query)
            justify_ms = (time.perf_counter() - t) * 1000
            times["CPU: time to ranked list"].append(cpu_ranked_ms)
            times["CPU: time to last justification"].append((time.process_time() - cpu_start) * 1000)
            times["profile update"].append(update_ms)
            times["retrieve"].append(result.timings_ms.get("retrieve", 0.0))
            times["rank"].append(result.timings_ms.get("rank", 0.0))
            times["time to ranked list"].append(update_ms + ranked_ms)
            times["justify (5)"].append(justify_ms)
            times["time to last justification"].append(update_ms + ranked_ms + justify_ms)
            print(
                f"  user {user} turn {turn + 1}: ranked list {update_ms + ranked_ms:.0f} ms, justified {justify_ms:.0f} ms"
            )
    return times


# How the five justifications of a turn are written: the old batched transformers call (the baseline), the same
# model streamed (``Recommender.justify_each``, what the API and the app do: the first pick alone, then the other
# four in one call), and llama.cpp streamed the same way, the four decoded together in its slots, each generation
# stopped at its first full stop: on the GGUF as bundled (Q4_1) and on the served Q8_0 copy of it
# (``materialise_q8_0_gguf``: llama.cpp's x86 build runs Q8_0 prefill through its tiled GEMM).
WRITERS = (
    ("transformers, one batched generate (before)", "transformers", False, None),
    ("transformers, streamed (first, then 4 batched)", "transformers", True, None),
    (
        "llama.cpp on the bundled Q4_1 GGUF, streamed (first, then 4 in parallel slots)",
        "llamacpp",
        True,
        "q4_1",
    ),
    (
        "llama.cpp on its Q8_0 copy, streamed (first, then 4 in parallel slots), stop at first sentence (served)",
        "llamacpp",
        True,
        None,
    ),
)


def justification_times(rec: Any, users: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
    """CPU ms from the ranked list to the first and to the last of 5 justifications, per writer, same turns."""
    from recagent.agent import LocalBackend, RecommendationRequest
    from recagent.agent.justifier import Justifier
    from recagent.agent.llm.llamacpp import LlamaCppGenerator
    from recagent.agent.llm.local_backend import bundled_gguf_path

    turns = []
    for i, user in enumerate(users):
        request = RecommendationRequest(user_id=user, query=REQUESTS[i % len(REQUESTS)], k=5)
        turns.append((request, *rec.rank(request)))
    out: dict[str, dict[str, list[float]]] = {}
    for label, generator, streamed, gguf in WRITERS:
        llm = LocalBackend(dtype="auto", generator=generator)
        llm.load()
        # The file as the package ships it, in place of the served Q8_0 copy; one thread, as served.
        if gguf == "q4_1":
            llm._llamacpp = LlamaCppGenerator(bundled_gguf_path(), threads=1)
        rec.justifier = Justifier(llm, rec.index)
        rec.justify(*turns[0][1:], turns[0][0].query)  # warm-up: model load, first prompt
        times: dict[str, list[float]] = {"first": [], "last": [], "generated": [], "cut": []}
        for request, profile, result in turns:
            start = time.process_time()
            if streamed:
                picks: list[Any] = []
                for pick in rec.justify_each(profile, result, request.query):
                    if not picks:
                        times["first"].append((time.process_time() - start) * 1000)
                    picks.append(pick)
            else:
                picks = rec.justify(profile, result, request.query).recommendations
                times["first"].append((time.process_time() - start) * 1000)
            times["last"].append((time.process_time() - start) * 1000)
            times["generated"].append(sum(p.justification.source == "generated" for p in picks) / len(picks))
            # A sentence the token limit cut off is shown ending in "..." (justifier._end_cut_off).
            times["cut"].append(sum(p.justification.text.endswith("...") for p in picks) / len(picks))
        out[label] = times
        print(
            f"  {label}: first {percentile(times['first'], 50):.0f} ms, last {percentile(times['last'], 50):.0f} ms CPU"
        )
    return out


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 users, 1 turn each, after a warm-up turn")
    args = parser.parse_args(argv)
    users = USERS[:2] if args.quick else USERS[:6]
    turns = 1 if args.quick else 2
    report = Report(
        "turn", "End-to-end turn: profile update → retrieve → rank → top-5 → justifications", args.quick
    )

    fast_llm = backend("auto")
    # Both rank with the LLM: the served default (fusion weight 0) skips the ranking pass altogether.
    fast = recommender(fast_llm, llm_order=True)
    slow = recommender(backend("float32", prefix_cache=0, generator="transformers"), llm_order=True)
    with profile_titles(10):
        run_turns(slow, ("900",), 1)  # warm-up
        baseline = run_turns(slow, users, turns)
    run_turns(fast, ("900",), 1)
    tuned = run_turns(fast, users, turns)

    table = report.table(
        f"Turn stages, {len(users)} users x {turns} turns, ms",
        ["stage", "p50", "p95", "skeleton p50 (baseline)", "skeleton p95", "speed-up p50"],
    )
    for stage in (*STAGES, *CPU_STAGES):
        table.add(
            stage,
            percentile(tuned[stage], 50),
            percentile(tuned[stage], 95),
            percentile(baseline[stage], 50),
            percentile(baseline[stage], 95),
            ratio(percentile(baseline[stage], 50), percentile(tuned[stage], 50)),
        )
    table.notes.append(
        f"tuned = {fast_llm.dtype}, 5 liked titles, logits of the last position only, prefix KV cache; "
        "both rank with the LLM's order (RECAGENT_RANK_FUSION=none); the served default (fusion weight 0, chosen "
        "on validation) skips that pass, so its ranked list costs the profile update + retrieve rows; "
        f"justifications by {'llama.cpp' if fast_llm.uses_llamacpp() else 'transformers'}; skeleton = float32, "
        "10 liked titles, no cache, one batched transformers generate; timings taken on a 2-core machine "
        "shared with other jobs"
    )
    report.plot_bars(
        "stages",
        list(STAGES),
        {
            "tuned p50": table.column("p50")[: len(STAGES)],
            "skeleton p50": table.column("skeleton p50 (baseline)")[: len(STAGES)],
        },
        "ms (log)",
        table.title,
        log=True,
    )

    writers = justification_times(fast, users if args.quick else USERS[:6])
    before = percentile(writers[WRITERS[0][0]]["last"], 50)
    table = report.table(
        f"Five justifications after the ranked list, {len(users if args.quick else USERS[:6])} turns, CPU ms",
        [
            "writer",
            "first p50",
            "first p95",
            "last p50",
            "last p95",
            "generated (not template)",
            "cut off at the token limit",
            "last: speed-up vs before",
        ],
    )
    for label, *_ in WRITERS:
        t = writers[label]
        table.add(
            label,
            percentile(t["first"], 50),
            percentile(t["first"], 95),
            percentile(t["last"], 50),
            percentile(t["last"], 95),
            f"{sum(t['generated']) / len(t['generated']):.0%}",
            f"{sum(t['cut']) / len(t['cut']):.0%}",
            ratio(before, percentile(t["last"], 50)),
        )
    table.notes.append(
        "process CPU time from the ranked list (one thread: an idle core's wall time); same users, requests "
        "and ranked lists for every writer; 'first' of a batched call is when all five arrive; the transformers "
        f"writers run in {fast_llm.dtype} (bfloat16 where the CPU has native bf16 matmuls, as AMX CPUs do: "
        "their prompt prefill is then far faster than llama.cpp's AVX2 build, which wins on decoding)"
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
