"""The ``recagent`` command line, one module per command group (cf. ``vllm/entrypoints/cli/``).

Heavy imports happen inside commands so ``recagent --help`` is instant; flags of the config models are
generated from them (``args.add_model_args``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import index, profile, quality, recommend, serve

COMMAND_GROUPS = (index, recommend, serve, profile, quality)


def _chosen(argv: Sequence[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given ``argv``, only the chosen command's flags are built (they import the config
    models), so ``recagent --help`` imports nothing heavy."""
    parser = argparse.ArgumentParser(
        prog="recagent",
        description="LLM-driven recommender: profiles from what users do and write, FAISS retrieval, "
        "an LLM that ranks candidates in one pass and justifies each pick.",
        epilog="Configuration comes from RECAGENT_* environment variables (docs/configuration.md); flags override "
        "them for one command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen(argv)
    for group in COMMAND_GROUPS:
        if chosen is None or chosen in group.COMMANDS:
            group.register(sub)
        else:
            for name, text in group.COMMANDS.items():
                sub.add_parser(name, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _chosen(argv):
        # Before a command's flags are built: they import the config models, which import the libraries
        # that read these variables. Bare `recagent --help` imports none of them and stays instant.
        from recagent.agent.settings import bootstrap_environment

        bootstrap_environment()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "k", 1) is not None and not 1 <= getattr(args, "k", 1) <= 20:
        parser.error("-k must be between 1 and 20")
    from pydantic import ValidationError

    from recagent.agent import RecagentError

    try:
        return int(args.func(args))
    except (RecagentError, ValidationError) as exc:
        message = (
            str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else str(exc.errors()[0]["msg"])
        )
        print(f"recagent: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["build_parser", "main"]
