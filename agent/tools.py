"""LangChain tools over the one :class:`Recommender`, for recagent's own agent mode and for other agents.

Both tools answer with ``response_format="content_and_artifact"``: the model reads a short, readable
summary (``ToolMessage.content``) while programs get the structured result (``ToolMessage.artifact``,
a JSON-ready dict). Called directly with plain arguments (``tool.invoke({...})``) a tool returns the
summary; :meth:`RecommendTool.recommend` returns the :class:`RecommendationResult` itself.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from recagent.retrieval.items import ItemFilter

from .client import RecagentClient, RecommendationService
from .errors import RecagentError, UnknownUserError
from .profiles.profile import UserProfile
from .render import summarise_profile, summarise_result
from .schemas import MAX_K, Diversity, RecommendationRequest, RecommendationResult


class RecommendArgs(BaseModel):
    """What a caller-bound :class:`RecommendTool` shows the model: the request, never whose it is."""

    model_config = ConfigDict(extra="forbid", title="recommend")

    request: str | None = Field(
        default=None,
        max_length=4000,
        description="What the user is looking for right now, in their words (e.g. 'a funny 90s movie').",
    )
    k: int = Field(default=5, ge=1, le=MAX_K, description=f"How many items to recommend (1-{MAX_K}).")
    include_genres: list[str] = Field(
        default_factory=list, description="Only items with at least one of these genres."
    )
    exclude_genres: list[str] = Field(default_factory=list, description="Never items with these genres.")
    year_min: int | None = Field(default=None, description="Only items from this year or later.")
    year_max: int | None = Field(default=None, description="Only items from this year or earlier.")
    diversity: Diversity = 0.0
    image: str | None = Field(
        default=None,
        max_length=4096,
        description="A photo to find items that look like it: the path of a local image file the user "
        "shared (or a data:image URL). Web URLs are not fetched.",
    )


class RecommendInput(RecommendArgs):
    """Arguments of :class:`RecommendTool`."""

    model_config = ConfigDict(extra="forbid", title="RecommendInput")

    user_id: str | None = Field(
        default=None,
        max_length=256,
        description="Id of the user whose taste applies; omit for someone without a profile.",
    )

    def to_request(
        self, session_id: str | None = None, history: list[str] | None = None, image: str | None = None
    ) -> RecommendationRequest:
        """The pipeline's request; ``image`` is the photo as a data URL (the tool reads ``self.image``'s file)."""
        return RecommendationRequest(
            image=image,
            user_id=self.user_id,
            query=self.request,
            history=history or [],
            session_id=session_id,
            k=self.k,
            diversity=self.diversity,
            filters=ItemFilter(
                include_genres=tuple(self.include_genres),
                exclude_genres=tuple(self.exclude_genres),
                year_min=self.year_min,
                year_max=self.year_max,
            ),
        )


class ProfileInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=256, description="Id of the user to describe.")


class ProfileArgs(BaseModel):
    """What a caller-bound :class:`ProfileTool` shows the model: nothing to choose."""

    model_config = ConfigDict(extra="forbid", title="user_profile")


class BoundProfileInput(ProfileArgs):
    user_id: str | None = Field(default=None, max_length=256)


# A bound tool validates its input with the full schema, so a model that still sends ``user_id`` (told to by
# injected text, say) is caught and refused rather than silently obeyed, while the schema it is *shown*
# (``tool_call_schema``, what bind_tools sends) has no user_id at all: the model is never offered a choice.
# (InjectedToolArg would hide it too, but LangGraph then drops a forged value without a trace.)


log = logging.getLogger("recagent.tools")


class CallerBinding(BaseModel):
    """Which user a bound tool acts for (``user_id=None``: an anonymous caller, who has no profile)."""

    user_id: str | None = None

    def check(self, tool: str, asked: str | None) -> str | None:
        """The caller's id; a call naming anyone else is refused (and logged) with a message the model can use."""
        if asked is not None and asked != self.user_id:
            log.warning("refused %s call for user %r: this tool acts only for %r", tool, asked, self.user_id)
            who = f"user {self.user_id!r}" if self.user_id else "an anonymous caller"
            raise ToolException(
                f"refused: this conversation acts for {who} only, and other users' data is not available. "
                "Call the tool again without user_id."
            )
        return self.user_id


def _binding(data: Any) -> Any:
    """``user_id=...`` (or ``bound=True``) at construction binds the tool to that caller."""
    if isinstance(data, dict) and ("user_id" in data or data.get("bound")):
        data = dict(data)
        data["binding"] = CallerBinding(user_id=data.pop("user_id", None))
        data.pop("bound", None)
    return data


def profile_dict(profile: UserProfile) -> dict[str, Any]:
    """The profile as JSON-ready data, without its embedding vectors (long and meaningless to read)."""
    data = profile.model_dump(mode="json")
    for key in ("vector", "negative_vector"):
        data.pop(key, None)
    return data


class RecommendTool(BaseTool):
    """Personalised recommendations from recagent's catalogue, with a justification for each pick."""

    name: str = "recommend"
    description: str = (
        "Recommend items from the catalogue for a user. Give the user's id when known and the request in "
        "the user's own words; optional k and genre/year filters. Returns ranked items with ids, titles "
        "and a one-sentence justification each. Only ever suggest items this tool returned."
    )
    args_schema: type[BaseModel] = RecommendInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    recommender: RecommendationService = Field(
        exclude=True, description="The in-process Recommender, or a RecagentClient for a running API."
    )
    session_id: str | None = Field(default=None, description="Conversation these calls belong to.")
    history: list[str] = Field(default_factory=list, description="Earlier user turns of the conversation.")
    binding: CallerBinding | None = Field(
        default=None,
        description="Set by RecommendTool(user_id=...) or bound=True: the tool acts for this caller only and "
        "its model-facing schema has no user_id.",
    )
    image_root: Path | None = Field(
        default=None,
        description="Where the photos the tool may read live (a chat's upload folder): relative paths start "
        "there and a path outside it is refused. None: any local image file (a trusted agent only).",
    )

    _bind = model_validator(mode="before")(_binding)

    @property
    def tool_call_schema(self) -> Any:
        return RecommendArgs if self.binding is not None else super().tool_call_schema

    def photo_data_url(self, ref: str | None) -> str | None:
        """The photo argument as the data URL the pipeline takes: a data URL as it is, a local file read
        (inside ``image_root`` when set) and checked to be an image. Never fetches from the web."""
        if ref is None or not ref.strip():
            return None
        if ref[:11].lower().startswith("data:image/"):
            return ref
        from recagent.retrieval.images import image_data_url, read_image_ref

        scheme, _, rest = ref.partition("://")
        if rest and scheme.lower() != "file":
            raise ToolException(
                f"refused: {scheme}:// images are not fetched; pass a local file the user shared"
            )
        path = Path(unquote(urlparse(ref).path) if rest else ref).expanduser()
        if self.image_root is not None:
            root = self.image_root.resolve()
            path = (root / path).resolve()
            if not path.is_relative_to(root):
                raise ToolException(f"refused: this tool reads photos only under {str(root)!r}")
        return image_data_url(read_image_ref(str(path)))  # checked to be an image, not any file it named

    def recommend(self, **kwargs: Any) -> RecommendationResult:
        args = RecommendInput(**kwargs)
        if self.binding is not None:
            args.user_id = self.binding.check(self.name, args.user_id)
        try:
            photo = self.photo_data_url(args.image)
            return self.recommender.recommend(args.to_request(self.session_id, self.history, photo))
        except UnknownUserError as exc:
            raise ToolException(f"{exc}; ask what they are looking for and pass it as 'request'") from exc
        except RecagentError as exc:  # ImageError included: a missing or unreadable photo
            raise ToolException(str(exc)) from exc

    def _run(self, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        result = self.recommend(**kwargs)
        return summarise_result(result), result.model_dump(mode="json")

    async def _arun(self, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        # The pipeline is CPU-bound and thread-safe; keep the event loop free while it runs.
        return await asyncio.to_thread(self._run, **kwargs)


class ProfileTool(BaseTool):
    """What recagent knows about a user's taste: interests with weights, and recent likes."""

    name: str = "user_profile"
    description: str = (
        "Look up a user's taste profile: the genres/topics they like and dislike (weights in [-1, 1]) "
        "and items they liked recently. Use it to explain or discuss a user's taste."
    )
    args_schema: type[BaseModel] = ProfileInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    recommender: RecommendationService = Field(
        exclude=True, description="The in-process Recommender, or a RecagentClient for a running API."
    )
    binding: CallerBinding | None = Field(
        default=None, description="Set by ProfileTool(user_id=...) or bound=True: only this caller's profile."
    )

    _bind = model_validator(mode="before")(_binding)

    @model_validator(mode="after")
    def _bound_input(self) -> ProfileTool:
        if self.binding is not None:
            self.args_schema = BoundProfileInput  # user_id optional: the caller's, unless refused
        return self

    @property
    def tool_call_schema(self) -> Any:
        return ProfileArgs if self.binding is not None else super().tool_call_schema

    def _run(self, user_id: str | None = None) -> tuple[str, dict[str, Any]]:
        if self.binding is not None:
            user_id = self.binding.check(self.name, user_id)
        if user_id is None:
            raise ToolException("the caller is anonymous and has no profile; ask what they like instead")
        try:
            profile = self.recommender.profile(user_id)
        except UnknownUserError as exc:
            raise ToolException(f"{exc}: no profile yet") from exc
        except RecagentError as exc:
            raise ToolException(str(exc)) from exc
        return summarise_profile(profile), profile_dict(profile)

    async def _arun(self, user_id: str | None = None) -> tuple[str, dict[str, Any]]:
        return await asyncio.to_thread(self._run, user_id)


def recagent_tools(
    recommender: RecommendationService,
    session_id: str | None = None,
    history: list[str] | None = None,
    caller: CallerBinding | None = None,
) -> list[BaseTool]:
    """The tools an agent needs to recommend from ``recommender``.

    With ``caller`` both tools act for that caller only (their schemas have no ``user_id``): what recagent's
    own agent mode uses, where the user comes from the authenticated request, never from the model.
    """
    return [
        RecommendTool(
            recommender=recommender, session_id=session_id, history=list(history or []), binding=caller
        ),
        ProfileTool(recommender=recommender, binding=caller),
    ]


class RecagentToolkit(BaseToolkit):
    """recagent's tools for any LangChain agent: in-process (``recommender=``) or over HTTP (:meth:`remote`).

    ``user_id=`` binds both tools to that caller (their schemas then have no ``user_id`` for the model to set);
    without it the model names the user, which suits a trusted back-office agent, not a user-facing one.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    recommender: RecommendationService = Field(
        exclude=True, description="The in-process Recommender, or a RecagentClient for a running API."
    )
    user_id: str | None = Field(default=None, description="Bind the tools to this caller.")
    bound: bool = Field(
        default=False, description="Bind the tools even without a user (an anonymous caller)."
    )
    session_id: str | None = None

    @classmethod
    def remote(
        cls, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None, **kwargs: Any
    ) -> RecagentToolkit:
        """Tools that call a running ``recagent serve``: no torch, no index in this process."""
        client = RecagentClient(base_url=base_url, api_key=SecretStr(api_key) if api_key else None)
        return cls(recommender=client, **kwargs)

    def get_tools(self) -> list[BaseTool]:
        caller = CallerBinding(user_id=self.user_id) if self.user_id is not None or self.bound else None
        return recagent_tools(self.recommender, session_id=self.session_id, caller=caller)
