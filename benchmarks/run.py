"""Run every benchmark, each in its own process, and collect the markdown into results/SUMMARY[-quick].md.

python -m benchmarks.run            # full run (make bench, about 15 minutes on 2 idle cores)
python -m benchmarks.run --quick    # a short smoke run
python -m benchmarks.run --only index ranking
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from .common import RESULTS_DIR, environment_note

BENCHMARKS = (
    "encoder",
    "image",
    "index",
    "index_load",
    "pgvector",
    "ranking",
    "turn",
    "api",
    "workers",
    "threads",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run recagent's speed benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    args = parser.parse_args(argv)
    suffix = "-quick" if args.quick else ""
    # The served defaults, never settings the product does not use (RECAGENT_THREADS unset = every core, with
    # the process defaults of agent/settings.py, OMP_WAIT_POLICY=PASSIVE among them); bench_threads compares.
    from recagent.agent.settings import Settings, bootstrap_environment

    bootstrap_environment()
    failed = []
    started = time.perf_counter()
    env_line = environment_note(Settings().threads or os.cpu_count())
    for name in args.only or BENCHMARKS:
        print(f"== {name} ==", flush=True)
        t = time.perf_counter()
        cmd = [sys.executable, "-m", f"benchmarks.bench_{name}"] + (["--quick"] if args.quick else [])
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - t:.0f} s ==", flush=True)
    parts = [
        f"# recagent benchmarks{' (quick)' if args.quick else ''}",
        "",
        f"{env_line}; total {time.perf_counter() - started:.0f} s"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        "",
    ]
    for name in BENCHMARKS:
        path = RESULTS_DIR / f"{name}{suffix}.md"
        if path.exists():
            parts.append(path.read_text(encoding="utf-8"))
    (RESULTS_DIR / f"SUMMARY{suffix}.md").write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {RESULTS_DIR / f'SUMMARY{suffix}.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
