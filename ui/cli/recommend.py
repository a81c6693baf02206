"""``recagent recommend``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import data_parent, llm_parent, runtime_parent, settings_from_args

COMMANDS = {"recommend": "recommend items for a user"}


def register(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser(
        "recommend", help=COMMANDS["recommend"], parents=[data_parent(), llm_parent(), runtime_parent()]
    )
    rec.add_argument("--user", required=True, help="user id")
    rec.add_argument("--query", help="what the user is looking for right now")
    rec.add_argument(
        "--image", type=Path, help="a photo (local file): items that look like it (catalogues with images)"
    )
    rec.add_argument("-k", type=int, default=5, help="how many items (1-20, default 5)")
    rec.add_argument("--genre", action="append", help="only items of this genre (repeatable)")
    rec.add_argument("--exclude-genre", action="append", help="never items of this genre (repeatable)")
    rec.add_argument("--year-min", type=int)
    rec.add_argument("--year-max", type=int)
    rec.add_argument("--json", action="store_true", help="print the structured result as JSON")
    rec.add_argument("--no-justify", action="store_true", help="skip the generated justifications")
    rec.add_argument(
        "--diversity",
        type=float,
        default=0.0,
        help="0 = best matches first, up to 1 = more varied (default 0)",
    )
    rec.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    from recagent.agent import RecommendationRequest, build_recommender
    from recagent.agent.render import result_table
    from recagent.retrieval import ItemFilter

    recommender = build_recommender(
        args.dataset, settings_from_args(args), events=args.events, index_dir=args.index
    )
    photo = None
    if args.image is not None:
        from recagent.retrieval.images import image_data_url, read_image_ref

        photo = image_data_url(read_image_ref(str(args.image.resolve())))
    request = RecommendationRequest(
        user_id=args.user,
        query=args.query,
        image=photo,
        k=args.k,
        filters=ItemFilter(
            include_genres=tuple(args.genre or ()),
            exclude_genres=tuple(args.exclude_genre or ()),
            year_min=args.year_min,
            year_max=args.year_max,
        ),
        justify=not args.no_justify,
        diversity=args.diversity,
    )
    result = recommender.recommend(request)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(result_table(result))
    return 0
