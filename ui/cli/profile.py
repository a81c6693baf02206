"""``recagent profile show|erase|export|demo-reviews``."""

from __future__ import annotations

import argparse
import sys

from .common import data_parent, runtime_parent, settings_from_args

COMMANDS = {"profile": "show, export or erase user profiles"}


def register(sub: argparse._SubParsersAction) -> None:
    profile = sub.add_parser("profile", help=COMMANDS["profile"]).add_subparsers(
        dest="profile_command", required=True, metavar="PROFILE_COMMAND"
    )
    show = profile.add_parser(
        "show",
        help="a user's profile: interests with evidence, aspects, constraints",
        parents=[data_parent(), runtime_parent()],
    )
    show.add_argument("--user", required=True, help="user id")
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    show.add_argument("--vectors", action="store_true", help="include the vectors in --json output")
    show.set_defaults(func=cmd_profile_show)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--user", required=True, help="user id")
    store.add_argument("--dataset", default="ml-100k", help="whose store (default ml-100k)")
    erase = profile.add_parser(
        "erase",
        help="delete everything stored about a user (profile, events, texts, vectors)",
        parents=[store],
    )
    erase.set_defaults(func=cmd_profile_erase)
    export = profile.add_parser(
        "export", help="print everything stored about a user as JSON", parents=[store]
    )
    export.set_defaults(func=cmd_profile_export)
    demo = profile.add_parser(
        "demo-reviews",
        help="build a profile from real clothing reviews (Women's E-Commerce Clothing Reviews, offline)",
        parents=[runtime_parent()],
    )
    demo.add_argument("-n", type=int, default=5, help="how many reviews (default 5)")
    demo.add_argument("--offset", type=int, default=0, help="skip this many reviews first")
    demo.add_argument("--min-chars", type=int, default=150, help="only reviews at least this long")
    demo.add_argument("--json", action="store_true", help="print aspects and interests as JSON")
    demo.set_defaults(func=cmd_profile_demo_reviews)


def cmd_profile_show(args: argparse.Namespace) -> int:
    from recagent.agent import build_recommender
    from recagent.agent.render import profile_table

    recommender = build_recommender(
        args.dataset, settings_from_args(args), events=args.events, index_dir=args.index, backend=None
    )
    profile = recommender.profile(args.user)
    if args.json:
        exclude = None if args.vectors else {"vector", "negative_vector", "short_term_vector"}
        print(profile.model_dump_json(indent=2, exclude=exclude))
        return 0
    print(profile_table(profile))
    return 0


def cmd_profile_erase(args: argparse.Namespace) -> int:
    from recagent.agent import open_store

    settings = settings_from_args(args)
    report = open_store(settings, args.dataset).erase(args.user)
    where = "the PostgreSQL store" if settings.store_url is not None else settings.profile_store_path(args.dataset)
    print(
        f"erased user {args.user} from {where}: {report.profiles} profile versions, "
        f"{report.vectors} vectors, {report.events} events, {report.texts} texts"
    )
    return 0


def cmd_profile_export(args: argparse.Namespace) -> int:
    from recagent.agent import open_store

    print(open_store(settings_from_args(args), args.dataset).export_json(args.user))
    return 0


def cmd_profile_demo_reviews(args: argparse.Namespace) -> int:
    from recagent.agent import FastExtractor, TextExtractor, UserProfile, Vocabulary
    from recagent.agent.privacy import redact_text
    from recagent.agent.profiles.profile_builder import merge_claims
    from recagent.agent.render import profile_table
    from recagent.retrieval import Encoder, configure_threads
    from recagent.retrieval.reviews import load_clothing_reviews

    settings = settings_from_args(args)
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
    print(profile_table(profile, evidence=1))
    return 0
