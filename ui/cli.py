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


def cmd_finetune(args: argparse.Namespace) -> int:
    from recagent.finetune import FinetuneConfig, LoraSettings, run_finetune

    lora = LoraSettings(
        base_model=args.base_model,
        r=args.r,
        alpha=args.alpha,
        dropout=args.dropout,
        target_modules=args.target_modules.split(","),
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_steps=args.max_steps,
        save_every=args.save_every,
        top_layers=args.top_layers,
        seed=args.seed,
        device=args.device,
    )
    config = FinetuneConfig(
        dataset=args.dataset,
        out=args.out,
        examples=args.examples,
        eval_users=args.eval_users,
        seed=args.seed,
        history_titles=args.history_titles,
        justification_share=args.justification_share,
        lora=lora,
        resume=not args.no_resume,
        threads=args.threads,
        hybrid=args.hybrid,
    )
    report = run_finetune(config, log=lambda m: print(m, file=sys.stderr))
    print(f"adapter written to {report.adapter_dir} ({report.steps} steps, {report.seconds:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import shlex

    from recagent.finetune import EvalConfig, run_evaluation, write_report

    command = (
        "recagent " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if args.command_line is None
        else args.command_line
    )
    config = EvalConfig(
        dataset=args.dataset,
        users=args.users,
        llm_users=args.llm_users,
        seed=args.seed,
        adapter=args.adapter,
        base_model=args.base_model,
        justify_users=args.justify_users,
        out_dir=args.out,
        threads=args.threads,
        command=command,
    )
    if args.adapter is not None and not (args.adapter / "adapter_config.json").exists():
        print(
            f"recagent: error: {args.adapter}: no adapter_config.json (run 'recagent finetune' first)",
            file=sys.stderr,
        )
        return 2
    report = run_evaluation(config, log=lambda m: print(m, file=sys.stderr))
    md, _, png = write_report(report, args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"table: {md}\nchart: {png}")
    return 0


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

    ft = sub.add_parser(
        "finetune", help="LoRA-tune the LLM ranker on MovieLens-1M (LlamaRec-style label targets)"
    )
    ft.add_argument(
        "--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"], help="bundled dataset (default ml-1m)"
    )
    ft.add_argument(
        "--out", type=Path, default=Path("finetune/adapters/smollm2-ranker"), help="adapter folder"
    )
    ft.add_argument("--examples", type=int, default=400, help="training examples (default 400)")
    ft.add_argument(
        "--eval-users", type=int, default=1000, help="eval sample excluded from training (default 1000)"
    )
    ft.add_argument("--base-model", default="smollm2", help="'smollm2' (bundled) or a model folder")
    ft.add_argument("--r", type=int, default=8, help="LoRA rank (default 8)")
    ft.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default 16)")
    ft.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    ft.add_argument(
        "--target-modules", default="q_proj,k_proj,v_proj,o_proj", help="comma-separated module names"
    )
    ft.add_argument("--top-layers", type=int, help="adapt only the last N decoder layers (faster on CPU)")
    ft.add_argument("--lr", type=float, default=5e-4, help="learning rate (default 5e-4)")
    ft.add_argument("--epochs", type=int, default=1)
    ft.add_argument("--batch-size", type=int, default=4)
    ft.add_argument("--grad-accum", type=int, default=2, help="micro-batches per optimizer step (default 2)")
    ft.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    ft.add_argument("--save-every", type=int, default=25, help="checkpoint every N steps (default 25)")
    ft.add_argument("--history-titles", type=int, default=3, help="liked titles in each prompt (default 3)")
    ft.add_argument(
        "--justification-share", type=float, default=0.0, help="share of examples with a justification target"
    )
    ft.add_argument(
        "--hybrid", help="'method:weight:half_life' for retrieval (default: chosen on validation)"
    )
    ft.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming the newest checkpoint"
    )
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="cpu", help="cpu or cuda")
    ft.add_argument("--threads", type=int, default=0, help="torch/FAISS threads (0 = all cores)")
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser(
        "eval", help="offline evaluation: six systems, leave-one-out, full ranking, table + chart"
    )
    ev.add_argument(
        "--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"], help="bundled dataset (default ml-1m)"
    )
    ev.add_argument(
        "--users", type=int, default=1000, help="seeded random sample of test users (default 1000)"
    )
    ev.add_argument("--llm-users", type=int, help="users for the LLM rows (default: --users)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--adapter", type=Path, help="LoRA adapter folder for the LoRA row (from 'recagent finetune')"
    )
    ev.add_argument("--base-model", default="smollm2")
    ev.add_argument(
        "--justify-users", type=int, default=20, help="users whose top pick is justified (default 20)"
    )
    ev.add_argument("--out", type=Path, default=Path("benchmarks/results/ml1m-eval"), help="results folder")
    ev.add_argument("--threads", type=int, default=0)
    ev.add_argument("--command-line", help=argparse.SUPPRESS)
    ev.set_defaults(func=cmd_eval)
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
