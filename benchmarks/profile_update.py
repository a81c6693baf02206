"""Incremental profile update vs a full rebuild, on MovieLens-100k with the real MiniLM encoder.

Measures, per operation, p50/p95 wall time over many single updates:
  - one rating event (ProfileBuilder.update) vs rebuilding the profile from the whole history (the baseline);
  - one rating event through the served Recommender to its next query vector (profile + SASRec state);
  - one chat turn into the session (ConversationMemory.observe: redaction, constraint rules, one encode);
  - one review into the long-term profile (fast extractor: clause encode + vocabulary + VADER).
Every text is unique so the encoder really runs (user text bypasses the embedding cache anyway).

    .venv/bin/python -m benchmarks.profile_update [--users 20] [--threads 1]

Prints a table and writes benchmarks/results/profile_update.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET_MS = 50.0
RESULTS = Path(__file__).parent / "results"


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20, help="users to sample (default 20)")
    parser.add_argument("--events", type=int, default=10, help="incremental events per user (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch/FAISS threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_update.md")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from recagent.agent import FastExtractor, TextExtractor, Vocabulary
    from recagent.agent.memory import ConversationMemory
    from recagent.agent.profiles.profile import SessionMemory
    from recagent.agent.profiles.profile_builder import ProfileBuilder, merge_claims
    from recagent.agent.settings import Settings
    from recagent.retrieval import Encoder, configure_threads, load_bundled
    from recagent.retrieval.reviews import load_clothing_reviews

    configure_threads(args.threads)
    settings = Settings()
    dataset = load_bundled("ml-100k")
    encoder = Encoder(settings.encoder, cache_dir=settings.cache_dir)
    from recagent.agent.factory import open_index

    index, sequence = open_index(dataset, settings, encoder)
    builder = ProfileBuilder(index)
    users = [u for u in dataset.users if len(dataset.history(u)) >= 60][: args.users]

    rebuild_ms: list[float] = []
    update_ms: list[float] = []
    for user in tqdm(users, desc="rating events", unit="user"):
        history = dataset.history(user)
        base, new = history[: -args.events], history[-args.events :]
        profile = builder.build(user, base)
        for pos, event in enumerate(new):
            t = time.perf_counter()
            profile = builder.update(profile, event)
            update_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            builder.build(user, base + new[: pos + 1])
            rebuild_ms.append((time.perf_counter() - t) * 1000)

    # The served path: one event through Recommender.add_events, then the next query (text part + SASRec state).
    from recagent.agent import Recommender

    query_ms: list[float] = []
    for user in tqdm(users, desc="event → query", unit="user"):
        history = dataset.history(user)
        rec = Recommender(index, encoder, None, histories={user: history[: -args.events]}, sequence=sequence)
        rec.query_vector(rec.profile(user), None)
        for event in history[-args.events :]:
            t = time.perf_counter()
            rec.add_events([event])
            rec.query_vector(rec.profile(user), None)
            query_ms.append((time.perf_counter() - t) * 1000)

    fast = FastExtractor(encoder, Vocabulary.for_movies(index.catalog.genres()))
    fast.extract("warm up the encoder and the vocabulary")
    memory = ConversationMemory(fast, index.catalog.genres())
    moods = ["something funny", "no horror please", "a romantic film from the 80s", "not another superhero movie",
             "a tense thriller after 1995", "an animated film for kids", "nothing scary, maybe a musical"]  # fmt: skip
    chat_ms: list[float] = []
    for n in tqdm(range(len(users) * args.events), desc="chat turns", unit="turn"):
        session = SessionMemory(session_id=f"bench-{n}")
        text = f"{moods[n % len(moods)]} (turn {n})"
        t = time.perf_counter()
        memory.observe(session, text)
        chat_ms.append((time.perf_counter() - t) * 1000)

    reviews = load_clothing_reviews(limit=len(users) * args.events, min_chars=50)
    clothing = TextExtractor(FastExtractor(encoder, Vocabulary.for_clothing()))
    clothing.extract("warm up")
    review_ms: list[float] = []
    words: list[int] = []
    from recagent.agent import UserProfile

    profile = UserProfile(user_id="bench-reviewer")
    for review in tqdm(reviews, desc="reviews", unit="review"):
        t = time.perf_counter()
        profile = merge_claims(profile, clothing.extract(review.text), "review", review.review_id)
        review_ms.append((time.perf_counter() - t) * 1000)
        words.append(len(review.text.split()))

    rows = [
        ("rating event: incremental update", update_ms),
        ("rating event: full rebuild (baseline)", rebuild_ms),
        ("rating event → next query (profile update + SASRec state)", query_ms),
        ("chat turn → session (fast path)", chat_ms),
        (f"review → aspects (fast path, ~{statistics.median(words):.0f} words)", review_ms),
    ]
    header = "| operation | n | p50 ms | p95 ms | target |\n|---|---:|---:|---:|---|"
    lines = [header]
    for name, samples in rows:
        ok = "< 50 ms ✓" if _pct(samples, 50) < TARGET_MS else "< 50 ms ✗"
        target = ok if "baseline" not in name else "—"
        lines.append(
            f"| {name} | {len(samples)} | {_pct(samples, 50):.2f} | {_pct(samples, 95):.2f} | {target} |"
        )
    ratio = statistics.median(rebuild_ms) / statistics.median(update_ms)
    table = "\n".join(lines)
    note = (
        f"\nIncremental update is {ratio:.0f}× faster than a rebuild (median, same process). "
        f"Users: {len(users)} MovieLens-100k users with ≥60 ratings; {args.threads} thread(s); "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared machine: p95 includes contention). "
        "The 50 ms target is for one event or chat turn; a whole review is several clauses and MiniLM encoding "
        "them is ~97% of its time (cProfile), so it scales with the review's length.\n"
    )
    print(table + note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Profile update latency\n\n`.venv/bin/python -m benchmarks.profile_update`\n\n"
        + table
        + "\n"
        + note
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
