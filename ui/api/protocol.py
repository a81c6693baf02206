"""Request and response schemas of the HTTP API: OpenAI's chat-completion shapes plus recagent's own.

Field names follow the OpenAI API so its clients parse our answers natively; recagent's structured
results travel in extra fields (``recommendations`` on a completion, ``recagent`` on a stream chunk)
that OpenAI clients keep and expose as attributes.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recagent.agent import RecommendationResult
from recagent.agent.schemas import MAX_IMAGE_URL_CHARS, Diversity
from recagent.retrieval import Interaction, ItemFilter

MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 4000
MAX_EVENTS = 1000
MAX_USER_ID = 256


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


# ---------------------------------------------------------------- errors


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorInfo


# ---------------------------------------------------------------- models


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=now)
    owned_by: str = "recagent"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---------------------------------------------------------------- chat completions


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(max_length=MAX_IMAGE_URL_CHARS)
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _data_url(cls, value: str) -> str:
        if not value[:11].lower().startswith("data:image/"):
            raise ValueError(
                "only data:image/...;base64 URLs are accepted; remote image URLs are refused (recagent runs offline)"
            )
        return value


class ImagePart(BaseModel):
    """OpenAI's image content part: ``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}``.
    The photo asks for items that look like it ("more like this photo")."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> list[str]:
        """The data URLs of the message's image parts, in order."""
        if not isinstance(self.content, list):
            return []
        return [part.image_url.url for part in self.content if isinstance(part, ImagePart)]

    @field_validator("content")
    @classmethod
    def _bounded(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        size = (
            len(value)
            if isinstance(value, str)
            else sum(len(p.text) for p in value or [] if isinstance(p, TextPart))
        )
        if size > MAX_MESSAGE_CHARS:
            raise ValueError(f"a message may hold at most {MAX_MESSAGE_CHARS} characters (got {size})")
        return value


class RecagentOptions(BaseModel):
    """recagent's knobs on a chat completion, sent as the extra body field ``recagent``."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=5, ge=1, le=20, description="How many picks.")
    filters: ItemFilter = Field(default_factory=ItemFilter)
    exclude_seen: bool = True
    justify: bool = True
    diversity: Diversity = 0.0
    session_id: str | None = Field(default=None, max_length=256)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``. ``json_object``, and ``json_schema`` naming ``RecommendationResult``, get
    the structured result as the message content; other schemas are refused (400), as vLLM refuses what it
    cannot honour."""

    model_config = ConfigDict(extra="allow")

    type: str
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completion request. Sampling fields are accepted and ignored: the ranker is greedy.

    The user whose profile applies is ``user`` (or ``metadata.user_id``); the conversation is
    ``metadata.session_id`` (or ``recagent.session_id``).
    """

    model_config = ConfigDict(extra="ignore")

    model: str = Field(max_length=256)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    user: str | None = Field(default=None, max_length=MAX_USER_ID)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is produced.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    recagent: RecagentOptions = Field(default_factory=RecagentOptions)

    @property
    def user_id(self) -> str | None:
        return self.user or (self.metadata or {}).get("user_id") or None

    @property
    def session_id(self) -> str | None:
        return self.recagent.session_id or (self.metadata or {}).get("session_id") or None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


ResponseMode = Literal["pipeline", "agent", "task"]
"""Which path answered a chat completion: the pipeline, the tool-calling agent, or a front-end task prompt."""


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    recommendations: RecommendationResult | None = Field(
        description="recagent extra field: the structured picks the prose describes "
        "(null when the agent did not recommend, and for a front-end's title/tag task prompt)."
    )
    mode: ResponseMode = Field(
        default="pipeline", description="recagent extra field: which conversation mode answered."
    )


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class StreamEvent(BaseModel):
    """recagent extra field of a stream chunk: what the chunk's text says, as data.

    ``ranked`` (first content chunk): every pick, in order, before any justification.
    ``justification``: one pick's justification and evidence, as soon as it is generated.
    ``done`` (last chunk): the complete result, justifications included.
    """

    event: Literal["ranked", "justification", "done"]
    result: RecommendationResult | None = None
    rank: int | None = None
    item_id: str | None = None
    justification: dict[str, Any] | None = None
    evidence: list[dict[str, Any]] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    recagent: StreamEvent | None = None


# ---------------------------------------------------------------- recagent endpoints


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Interaction] = Field(min_length=1, max_length=MAX_EVENTS)


class EventsResponse(BaseModel):
    accepted: int
    users: list[str] = Field(description="Users whose profiles changed.")


class ProfileResponse(BaseModel):
    object: Literal["user.profile"] = "user.profile"
    user_id: str
    profile: dict[str, Any] = Field(description="The user's profile, vectors left out.")


class DeletedResponse(BaseModel):
    object: Literal["user.profile.deleted"] = "user.profile.deleted"
    user_id: str
    deleted: bool


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    items: int
    users: int
    ranker: str
    chat_mode: Literal["pipeline", "agent"]
