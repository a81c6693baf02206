"""The Gradio app: chat on the left; the user's profile and the recommendations as cards on the right.

Each card has like/dislike buttons that send events to the ``Recommender``; the profile and the
picks are refreshed right away, so the effect of a click is visible. A user picker holds the
MovieLens users; "New user" starts a cold profile that learns from the chat and from clicks.
Nothing is fetched from the internet: analytics off, no share link, fonts served locally.

With API keys configured (``grants``) the app asks for a sign-in: the user name is a user id and the
password an API key bound to it. Every event then acts for the signed-in user, whatever the page sends
(the user picker is locked and ignored), so one person cannot read or change another's profile.
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recagent.agent import RecommendationRequest, RecommendationResult, Recommender, UnknownUserError
from recagent.agent.agent_mode import ToolCallingChat
from recagent.agent.render import content_text, result_markdown
from recagent.agent.settings import bootstrap_environment
from recagent.agent.tools import profile_dict
from recagent.retrieval import ImageError, Interaction
from recagent.retrieval.images import image_data_url, read_image_ref

from .api.auth import KeyGrant, find_grant

bootstrap_environment()  # before gradio is imported: it reads GRADIO_ANALYTICS_ENABLED at import
import gradio as gr  # noqa: E402  (module level: handlers annotate gr.Request, which Gradio resolves by name)

log = logging.getLogger("recagent.app")

NEW_USER = "(new user)"
PHOTO_NOTE = "(more like this photo)"
MAX_CARDS = 10
TOOL_NOTE = "🛠️ Used tool"
EMPTY_PICKS = {"user": None, "query": None, "k": 5, "result": None}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _bar(weight: float) -> str:
    colour = "#2e7d32" if weight >= 0 else "#c62828"
    width = max(2, int(abs(weight) * 100))
    return (
        f'<span style="display:inline-block;width:80px;height:8px;background:#e0e0e0;border-radius:4px;'
        f'vertical-align:middle"><span style="display:block;width:{width}%;height:8px;background:{colour};'
        f'border-radius:4px"></span></span>'
    )


def profile_html(recommender: Recommender, user_id: str | None) -> str:
    """The profile panel: interests with weights and the evidence behind them, then recent likes."""
    if not user_id:
        return "<div id='profile-card'><h3>Profile</h3><p>Pick a user or start a new one.</p></div>"
    try:
        profile = profile_dict(recommender.profile(user_id))
    except UnknownUserError:
        return (
            f"<div id='profile-card'><h3>Profile of {_e(user_id)}</h3><p><b>New user</b>: no history yet. "
            "Say what you like in the chat and use Like/Dislike on the cards; the profile fills in as you go.</p></div>"
        )
    parts = [
        f"<div id='profile-card'><h3>Profile of {_e(user_id)}</h3>",
        f"<p style='margin:0 0 6px'>{_e(profile.get('event_count', 0))} events"
        + (f", mean rating {profile['rating_mean']:.2f}" if profile.get("rating_mean") is not None else "")
        + "</p>",
        "<table style='width:100%;font-size:0.9em'><tr><th align=left>interest</th><th>weight</th>"
        "<th align=left>evidence</th></tr>",
    ]
    for interest in (profile.get("interests") or [])[:6]:
        weight = float(interest.get("weight", 0.0))
        evidence = "; ".join(_e(ev.get("text", "")) for ev in (interest.get("evidence") or [])[:1])
        parts.append(
            f"<tr class='interest'><td>{_e(interest.get('tag', ''))}</td>"
            f"<td style='white-space:nowrap'>{_bar(weight)} {weight:+.2f}</td>"
            f"<td style='font-size:0.85em;color:#555'>{evidence}</td></tr>"
        )
    parts.append("</table>")
    liked = [_e(r.get("title", "")) for r in (profile.get("liked") or [])[:4]]
    if liked:
        parts.append(
            f"<p style='font-size:0.85em;margin-top:6px'><b>Recently liked:</b> {'; '.join(liked)}</p>"
        )
    disliked = [_e(r.get("title", "")) for r in (profile.get("disliked") or [])[:3]]
    if disliked:
        parts.append(f"<p style='font-size:0.85em'><b>Disliked:</b> {'; '.join(disliked)}</p>")
    parts.append("</div>")
    return "".join(parts)


def _match(rec: dict[str, Any]) -> str:
    """A score a person can read: the pick's weight relative to the best candidate, as a percentage."""
    match = rec.get("match")
    return f" · <span class='match'>{match:.0%} match</span>" if match is not None else ""


def local_image(image: str | None, root: Path | None = None) -> Path | None:
    """The item's image as a local file the app may serve (``file://`` or a path, relative ones from the
    catalogue file's folder ``root``), else None: remote URLs are not fetched (the page would call the internet)."""
    if not image or ("://" in image and not image.startswith("file://")):
        return None
    path = Path(image.removeprefix("file://"))
    if not path.is_absolute() and root is not None:
        path = root / path
    return path if path.is_file() else None


def image_dirs(recommender: Recommender) -> list[str]:
    """Folders of the catalogue's local images: the only files the app serves besides its own."""
    root = recommender.index.catalog.root
    return sorted(
        {
            str(p.resolve().parent)
            for item in recommender.index.catalog
            if (p := local_image(item.image, root))
        }
    )


def card_html(rec: dict[str, Any], root: Path | None = None) -> str:
    """One recommendation card: title, metadata, scores, justification and the evidence it rests on."""
    item = rec["item"]
    title = (
        item["title"]
        if item.get("year") is None or f"({item['year']})" in item["title"]
        else (f"{item['title']} ({item['year']})")
    )
    meta = ", ".join(item.get("genres") or [])
    justification = rec.get("justification") or {}
    source = justification.get("source")
    evidence = "".join(f"<li>{_e(ev.get('text', ''))}</li>" for ev in (rec.get("evidence") or [])[:4])
    image = local_image(item.get("image"), root)
    picture = (
        f"<img class='rec-image' src='/gradio_api/file={_e(str(image.resolve()))}' alt='' "
        "style='float:right;max-height:72px;max-width:72px;margin-left:8px;border-radius:4px'>"
        if image is not None
        else ""
    )
    return (
        "<div class='rec-card' style='border:1px solid #ddd;border-left:5px solid #1565c0;border-radius:8px;"
        "padding:8px 10px;background:#fafafa'>"
        f"{picture}<div style='font-weight:600'>{rec['rank']}. {_e(title)}</div>"
        f"<div style='font-size:0.85em;color:#555'>{_e(meta)}{_match(rec)}</div>"
        + (
            f"<div style='margin-top:4px'>{_e(justification.get('text', ''))}"
            + (" <i style='color:#777'>(from your history)</i>" if source == "template" else "")
            + "</div>"
            if justification
            else ""
        )
        + (f"<ul style='font-size:0.8em;color:#555;margin:4px 0 0 16px'>{evidence}</ul>" if evidence else "")
        + "</div>"
    )


def sign_in_check(grants: list[KeyGrant]) -> Any:
    """Gradio's ``auth`` callable: user name = a user id, password = an API key bound to that user."""

    def check(username: str, password: str) -> bool:
        grant = find_grant(grants, password.encode())
        return grant is not None and bool(username) and grant.allows(username)

    return check


class AppHandlers:
    """What the app does on each event; :func:`create_app` lays the page out and wires these to it.

    ``signed_in``: the app is launched with ``auth=sign_in_check(grants)`` and every handler acts for
    ``request.username`` only.
    """

    def __init__(
        self,
        recommender: Recommender,
        max_users: int = 200,
        agent: ToolCallingChat | None = None,
        signed_in: bool = False,
    ) -> None:
        self.recommender = recommender
        self.agent = agent
        self.signed_in = signed_in
        # Numeric MovieLens ids in numeric order, so user 1 comes first.
        users = sorted(recommender.users(), key=lambda u: (not u.isdigit(), int(u) if u.isdigit() else 0, u))
        self.users = users[:max_users]
        self.default_user = self.users[0] if self.users else NEW_USER
        self._opening: dict[str, tuple[int, RecommendationResult]] = {}

    def _user_id(self, user: str | None, request: gr.Request | None = None) -> str | None:
        """Whom an event acts for: the signed-in user when sign-in is on (the page's value is ignored)."""
        if self.signed_in:
            caller = getattr(request, "username", None)
            if not caller:
                raise gr.Error("Sign in first.")
            if user not in (None, "", NEW_USER, caller):
                log.warning("app: signed-in user %r sent user %r; acting for %r", caller, user, caller)
            return str(caller)
        return None if user in (None, "", NEW_USER) else str(user)

    def _recommend(
        self, user_id: str | None, query: str | None, k: int, history: list[str], session: str
    ) -> RecommendationResult:
        return self.recommender.recommend(
            RecommendationRequest(
                user_id=user_id, query=query, k=k, history=history[-100:], session_id=session
            )
        )

    def _picks(
        self, user_id: str | None, query: str | None, k: int, result: RecommendationResult | None
    ) -> dict[str, Any]:
        return {
            "user": user_id,
            "query": query,
            "k": k,
            "result": None if result is None else result.model_dump(mode="json"),
        }

    def respond(
        self,
        message: str,
        history: list[dict[str, Any]],
        user: str,
        k: float,
        session: str,
        request: gr.Request,
        diversity: float = 0.0,
        photo: str | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], str, dict[str, Any], str]]:
        """One chat turn, streamed: the ranked list first, then each justification as it is written.
        ``photo`` (an uploaded file's path) asks for items that look like it."""
        history = list(history or [])
        message = (message or "").strip()
        user_id = self._user_id(user, request)
        earlier = [content_text(m["content"]) for m in history if m.get("role") == "user"]
        earlier = [t for t in earlier if t and t not in ("(recommend me something)", PHOTO_NOTE)]
        history.append(
            {"role": "user", "content": message or (PHOTO_NOTE if photo else "(recommend me something)")}
        )
        query = message or None
        image: str | None = None
        if photo:
            try:
                image = image_data_url(read_image_ref(str(photo)))
            except ImageError as exc:
                history.append({"role": "assistant", "content": f"That photo cannot be used: {exc}"})
                yield (
                    history,
                    "",
                    self._picks(user_id, query, int(k), None),
                    profile_html(self.recommender, user_id),
                )
                return

        def state(
            result: RecommendationResult | None,
        ) -> tuple[list[dict[str, Any]], str, dict[str, Any], str]:
            return (
                history,
                "",
                self._picks(user_id, query, int(k), result),
                profile_html(self.recommender, user_id),
            )

        if self.agent is not None and image is None:  # a photo goes to the pipeline, which sees it
            yield from self._agent_turn(history, earlier, message, user_id, session, state)
            return
        request_ = RecommendationRequest(
            user_id=user_id,
            query=query,
            k=int(k),
            history=earlier[-100:],
            session_id=session,
            justify=False,
            diversity=float(diversity or 0.0),
            image=image,
        )
        try:
            profile, ranked = self.recommender.rank(request_)
        except (UnknownUserError, ImageError) as exc:
            history.append({"role": "assistant", "content": f"{exc}"})
            yield state(None)
            return
        history.append({"role": "assistant", "content": result_markdown(ranked)})
        yield state(ranked)
        done = list(ranked.recommendations)
        for pos, justified in enumerate(self.recommender.justify_each(profile, ranked, query)):
            done[pos] = justified
            partial = ranked.model_copy(update={"recommendations": list(done)})
            history[-1] = {"role": "assistant", "content": result_markdown(partial)}
            yield state(partial)

    def _agent_turn(
        self,
        history: list[dict[str, Any]],
        earlier: list[str],
        message: str,
        user_id: str | None,
        session: str,
        state: Any,
    ) -> Iterator[tuple[list[dict[str, Any]], str, dict[str, Any], str]]:
        """Agent mode: each tool result shown as a collapsible tool message (Gradio's metadata convention)."""
        assert self.agent is not None
        thinking = {
            "role": "assistant",
            "content": "",
            "metadata": {"title": "🛠️ Calling tools", "status": "pending"},
        }
        history.append(thinking)
        yield state(None)
        started = time.perf_counter()
        try:
            turn = self.agent.run(
                [*({"role": "user", "content": t} for t in earlier), {"role": "user", "content": message}],
                user_id=user_id,
                session_id=session,
            )
        except UnknownUserError as exc:
            history[-1] = {"role": "assistant", "content": f"{exc}"}
            yield state(None)
            return
        history.pop()
        for result in turn.results:
            titles = ", ".join(r.item.display_title for r in result.recommendations[:3])
            history.append(
                {
                    "role": "assistant",
                    "content": f"{len(result.recommendations)} picks from {result.candidates} candidates "
                    f"(ranked by {result.ranker}): {titles}",
                    "metadata": {
                        "title": f"{TOOL_NOTE} recommend",
                        "status": "done",
                        "duration": round(result.timings_ms.get("total", 0.0) / 1000, 2),
                    },
                }
            )
        if not turn.results and turn.tool_calls:
            history.append(
                {
                    "role": "assistant",
                    "content": f"{turn.tool_calls} tool call(s)",
                    "metadata": {
                        "title": f"{TOOL_NOTE} tools",
                        "status": "done",
                        "duration": round(time.perf_counter() - started, 2),
                    },
                }
            )
        history.append({"role": "assistant", "content": turn.text})
        yield state(turn.results[-1] if turn.results else None)

    def feedback(
        self, kind: str, slot: int, user: str, picks: dict[str, Any], session: str, request: gr.Request
    ) -> tuple[str, dict[str, Any], str]:
        user_id = self._user_id(user, request)
        result = (picks or {}).get("result") or {}
        recs = result.get("recommendations") or []
        if user_id is None or slot >= len(recs):
            return "Pick a user first.", picks, profile_html(self.recommender, user_id)
        if (picks or {}).get("user") != user_id:
            # The cards on the page belong to someone else (or were edited): nothing is recorded.
            return (
                "These picks are not yours; ask for new ones.",
                picks,
                profile_html(self.recommender, user_id),
            )
        item = recs[slot]["item"]
        if item.get("id") not in self.recommender.index.catalog:
            return "Unknown item.", picks, profile_html(self.recommender, user_id)
        self.recommender.add_events(
            [Interaction(user_id=user_id, item_id=item["id"], kind=kind, timestamp=time.time())]
        )
        query = picks.get("query")
        k = int(picks.get("k") or 5)
        try:
            fresh = self._recommend(user_id, query, k, [], session)
            new_picks = self._picks(user_id, query, k, fresh)
        except UnknownUserError:
            new_picks = dict(EMPTY_PICKS)
        verb = "liked" if kind == "like" else "disliked"
        note = f"You {verb} **{_e(item['title'])}**; profile and picks updated."
        return note, new_picks, profile_html(self.recommender, user_id)

    def feedback_for(self, kind: str, slot: int) -> Any:
        # A real function, not functools.partial: Gradio finds the gr.Request parameter by its annotation.
        def handler(
            user: str, picks: dict[str, Any], session: str, request: gr.Request
        ) -> tuple[str, dict[str, Any], str]:
            return self.feedback(kind, slot, user, picks, session, request)

        return handler

    def show_cards(self, picks: dict[str, Any]) -> list[Any]:
        recs = (((picks or {}).get("result") or {}).get("recommendations")) or []
        columns = [gr.Column(visible=i < len(recs)) for i in range(MAX_CARDS)]
        root = self.recommender.index.catalog.root
        cards = [card_html(recs[i], root) if i < len(recs) else "" for i in range(MAX_CARDS)]
        return [*columns, *cards]

    def pick_user(
        self, user: str, request: gr.Request
    ) -> tuple[str, dict[str, Any], list[dict[str, Any]], str]:
        return profile_html(self.recommender, self._user_id(user, request)), dict(EMPTY_PICKS), [], ""

    def new_user(self, current: list[str], request: gr.Request) -> tuple[Any, list[str]]:
        if self.signed_in:  # one identity per sign-in
            return gr.Dropdown(value=self._user_id(None, request)), list(current or [])
        guest = f"guest-{uuid.uuid4().hex[:6]}"
        known = [guest, *(current or [])]
        return gr.Dropdown(choices=[*known, *self.users], value=guest), known

    def opening_picks(self, user_id: str) -> RecommendationResult:
        """The first view's picks, remembered until the user's history changes (every page load shows them)."""
        events = self.recommender.profile(user_id).event_count
        cached = self._opening.get(user_id)
        if cached is None or cached[0] != events:
            cached = (events, self._recommend(user_id, None, 5, [], ""))
            self._opening[user_id] = cached
        return cached[1]

    def start(
        self, user: str, request: gr.Request
    ) -> tuple[list[dict[str, Any]], dict[str, Any], str, str, Any]:
        """First view: a greeting with picks for the selected user, so the page is never empty."""
        session = uuid.uuid4().hex
        user_id = self._user_id(user, request)
        greeting = "Hi! Tell me what you are in the mood for, or rate the picks on the right."
        picks = dict(EMPTY_PICKS)
        if user_id is not None and self.recommender.known_user(user_id):
            result = self.opening_picks(user_id)
            picks = self._picks(user_id, None, 5, result)
            greeting += f"\n\nTo start, picks from the history of user {user_id}:\n\n" + result_markdown(
                result
            )
        shown = (
            gr.Dropdown(value=user_id, choices=[user_id or ""], interactive=False)
            if self.signed_in
            else gr.Dropdown()
        )
        return (
            [{"role": "assistant", "content": greeting}],
            picks,
            profile_html(self.recommender, user_id),
            session,
            shown,
        )


def create_app(
    recommender: Recommender,
    max_users: int = 200,
    agent: ToolCallingChat | None = None,
    warm_start: bool = True,
    signed_in: bool = False,
    concurrency: int = 4,
) -> Any:
    """The Blocks app (layout and wiring; the handlers are :class:`AppHandlers`). ``warm_start`` computes the
    default user's opening picks now, not on the first visit; ``concurrency`` chat turns run at once (Gradio's
    default is one at a time across every user)."""
    handlers = AppHandlers(recommender, max_users=max_users, agent=agent, signed_in=signed_in)
    users, default_user = handlers.users, handlers.default_user
    if default_user != NEW_USER and warm_start and not signed_in:
        handlers.opening_picks(default_user)
    respond, feedback_for, show_cards = handlers.respond, handlers.feedback_for, handlers.show_cards
    pick_user, new_user, start = handlers.pick_user, handlers.new_user, handlers.start

    with gr.Blocks(title="recagent", analytics_enabled=False) as demo:
        session = gr.State("")
        guests = gr.State([])
        picks = gr.JSON(value=dict(EMPTY_PICKS), visible=False, elem_id="picks")
        gr.Markdown(
            "# recagent\nPick a MovieLens user (or start a new one), say what you are in the mood for."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row():
                    user = gr.Dropdown(
                        choices=[] if signed_in else users or [NEW_USER],
                        value=None if signed_in else default_user,
                        label="User",
                        elem_id="user",
                        allow_custom_value=True,
                        scale=3,
                    )
                    fresh = gr.Button("New user", elem_id="new-user", scale=1)
                    k = gr.Slider(1, MAX_CARDS, value=5, step=1, label="How many picks", elem_id="k", scale=3)
                    variety = gr.Slider(
                        0,
                        1,
                        value=0,
                        step=0.1,
                        label="Variety (0 = best matches)",
                        elem_id="diversity",
                        scale=3,
                    )
                chat = gr.Chatbot(label="Chat", elem_id="chat", height=520)
                box = gr.Textbox(
                    placeholder="e.g. something funny from the 90s", label="Message", elem_id="message"
                )
                # Only where the catalogue has images: a photo finds items that look like it.
                photo = gr.Image(
                    type="filepath",
                    sources=["upload"],
                    label="Photo: more like this",
                    elem_id="photo",
                    height=160,
                    visible=recommender.index.image_vectors is not None,
                )
                send = gr.Button("Recommend", variant="primary", elem_id="send")
            with gr.Column(scale=2):
                profile = gr.HTML(elem_id="profile")
                note = gr.Markdown(elem_id="feedback-note")
                columns, cards, likes, dislikes = [], [], [], []
                for i in range(MAX_CARDS):
                    with gr.Column(visible=False, elem_classes=["card-slot"]) as column:
                        cards.append(gr.HTML(elem_id=f"card-{i}"))
                        with gr.Row():
                            likes.append(gr.Button("Like", size="sm", elem_id=f"like-{i}"))
                            dislikes.append(gr.Button("Dislike", size="sm", elem_id=f"dislike-{i}"))
                    columns.append(column)

        panel = [*columns, *cards]
        inputs = [box, chat, user, k, session, variety, photo]
        send.click(respond, inputs, [chat, box, picks, profile], api_name="respond").then(
            show_cards, picks, panel, api_visibility="private", show_progress="hidden"
        )
        box.submit(respond, inputs, [chat, box, picks, profile], api_visibility="private").then(
            show_cards, picks, panel, api_visibility="private", show_progress="hidden"
        )
        for i in range(MAX_CARDS):
            for kind, button in (("like", likes[i]), ("dislike", dislikes[i])):
                button.click(
                    feedback_for(kind, i),
                    [user, picks, session],
                    [note, picks, profile],
                    api_name=f"{kind}_{i}",
                ).then(show_cards, picks, panel, api_visibility="private", show_progress="hidden")
        # .input, not .change: only a person's pick resets the chat, not start() showing the signed-in user.
        user.input(pick_user, user, [profile, picks, chat, note], api_visibility="private").then(
            show_cards, picks, panel, api_visibility="private", show_progress="hidden"
        )
        fresh.click(new_user, guests, [user, guests], api_name="new_user")
        demo.load(start, user, [chat, picks, profile, session, user], api_visibility="private").then(
            show_cards, picks, panel, api_visibility="private", show_progress="hidden"
        )
    return demo.queue(default_concurrency_limit=concurrency)


def launch(
    recommender: Recommender,
    host: str = "127.0.0.1",
    port: int = 7860,
    agent: ToolCallingChat | None = None,
    grants: list[KeyGrant] | None = None,
    concurrency: int = 4,
) -> None:
    """Serve the app; with ``grants`` (RECAGENT_API_KEYS) people sign in as a user with a key bound to it."""
    demo = create_app(recommender, agent=agent, signed_in=bool(grants), concurrency=concurrency)
    auth = sign_in_check(grants) if grants else None
    print(f"recagent app on http://{host}:{port}" + (" (sign-in required)" if auth else ""), flush=True)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        show_error=True,
        footer_links=[],
        auth=auth,
        allowed_paths=image_dirs(recommender),
    )
