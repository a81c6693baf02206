"""``recagent index build``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import add_model_args
from .common import data_parent, runtime_parent, settings_from_args

COMMANDS = {"index": "build item indexes"}


def register(sub: argparse._SubParsersAction) -> None:
    from recagent.agent import Settings

    index = sub.add_parser("index", help=COMMANDS["index"]).add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser(
        "build",
        help="encode a catalogue, train SASRec on its events and write the fused FAISS index folder",
        parents=[data_parent(None, index=False), runtime_parent()],
    )
    build.add_argument("--out", type=Path, help="index folder (default: in the cache dir)")
    build.add_argument(
        "--text-only", action="store_true", help="no sequential model: text vectors only (MiniLM)"
    )
    sasrec = build.add_argument_group("SASRec training (RECAGENT_SASREC__*)")
    add_model_args(sasrec, Settings, fields=["sasrec"])
    build.set_defaults(func=cmd_index_build)


def cmd_index_build(args: argparse.Namespace) -> int:
    from recagent.agent.factory import make_image_encoder
    from recagent.agent.indexing import build_index
    from recagent.retrieval import Encoder, configure_threads, load_dataset

    settings = settings_from_args(args)
    configure_threads(settings.threads or None)
    dataset = load_dataset(args.dataset, args.events, ties=settings.ties)
    encoder = Encoder(settings.encoder, cache_dir=settings.cache_dir)
    folder = args.out or settings.index_dir(dataset.name)
    sequential = settings.sequential and not args.text_only
    what = "text + SASRec" if sequential and dataset.events else "text"
    print(
        f"building a {what} index of {len(dataset.catalog)} items of {dataset.name} in {folder}",
        file=sys.stderr,
    )
    index, model = build_index(
        dataset,
        encoder,
        folder,
        settings.sasrec,
        sequential=sequential,
        log=lambda m: print(m, file=sys.stderr),
        image_encoder=make_image_encoder(settings),
        image_weight=settings.image_weight,
        image_allow_remote=settings.image_allow_remote,
    )
    trained = (
        "" if model is None else f"; SASRec best validation NDCG@10 {model.meta.best_valid_ndcg_at_10:.4f}"
    )
    print(f"index of {len(index)} items written to {folder}{trained}")
    return 0
