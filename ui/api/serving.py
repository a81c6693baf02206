"""The API's logic: turn requests into ``Recommender`` calls and results into OpenAI-shaped answers.

Every endpoint calls the one :class:`Recommender`; the pipeline is CPU-bound, so calls run in a worker
thread and the event loop stays free for other requests and for streaming.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from recagent.agent import (
    Recommendation,
    RecommendationRequest,
    RecommendationResult,
    Recommender,
    UnknownUserError,
)
from recagent.agent.agent_mode import ChatMode, ToolCallingChat
from recagent.agent.llm import ChatMessage
from recagent.agent.llm.tokens import TokenCounter
from recagent.agent.render import answer_text, justification_text, ranked_text
from recagent.agent.settings import DEFAULT_API_MODEL_NAME
from recagent.agent.tools import profile_dict
from recagent.retrieval import default_cache_dir

from ..errors import APIError
from .auth import OPEN_GRANT, KeyGrant
from .protocol import (
    MAX_USER_ID,
    AssistantMessage,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    DeletedResponse,
    DeltaMessage,
    EventsRequest,
    EventsResponse,
    HealthResponse,
    ModelCard,
    ModelList,
    ProfileResponse,
    ResponseMode,
    StreamEvent,
    Usage,
    completion_id,
    now,
)
from .tasks import is_task_prompt, task_answer

RESULT_SCHEMA_NAME = "RecommendationResult"


def _unsupported(param: str, message: str) -> APIError:
    return APIError(400, message, "invalid_request_error", param=param, code="unsupported_parameter")


class OpenAIServing:
    """Holds the recommender and answers each endpoint."""

    def __init__(
        self,
        recommender: Recommender,
        model_name: str = DEFAULT_API_MODEL_NAME,
        agent: ToolCallingChat | None = None,
        tokens: TokenCounter | None = None,
        user_header: str | None = None,
    ) -> None:
        self.recommender = recommender
        self.model_name = model_name
        self.agent = agent
        self.tokens = tokens or TokenCounter(recommender.backend, default_cache_dir())
        self.user_header = user_header.lower() if user_header else None

    @property
    def chat_mode(self) -> ChatMode:
        return "agent" if self.agent is not None else "pipeline"

    # -------------------------------------------------------------- small endpoints

    def health(self) -> HealthResponse:
        backend = self.recommender.backend
        return HealthResponse(
            model=self.model_name,
            items=len(self.recommender.index.catalog),
            users=len(self.recommender.users()),
            ranker=backend.name if backend is not None else "retrieval",
            chat_mode=self.chat_mode,
        )

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=self.model_name)])

    def model(self, model: str) -> ModelCard:
        self.check_model(model)
        return ModelCard(id=self.model_name)

    def check_model(self, model: str) -> None:
        if model != self.model_name:
            raise APIError(
                404,
                f"The model {model!r} does not exist; this server serves {self.model_name!r}.",
                "invalid_request_error",
                param="model",
                code="model_not_found",
            )

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        try:
            return await run_in_threadpool(self.recommender.recommend, request)
        except UnknownUserError as exc:
            raise APIError.from_error(exc, "user_id") from exc

    async def profile(self, user_id: str) -> ProfileResponse:
        try:
            profile = await run_in_threadpool(self.recommender.profile, user_id)
        except UnknownUserError as exc:
            raise APIError.from_error(exc, "user_id") from exc
        return ProfileResponse(user_id=user_id, profile=profile_dict(profile))

    async def delete_profile(self, user_id: str) -> DeletedResponse:
        if not self.recommender.known_user(user_id):
            raise APIError.from_error(UnknownUserError(f"unknown user {user_id!r}"), "user_id")
        deleted = await run_in_threadpool(self.recommender.erase_user, user_id)
        return DeletedResponse(user_id=user_id, deleted=deleted)

    async def add_events(self, request: EventsRequest) -> EventsResponse:
        catalog = self.recommender.index.catalog
        for pos, event in enumerate(request.events):
            if event.item_id not in catalog:
                raise APIError(
                    422,
                    f"events[{pos}].item_id: unknown item {event.item_id!r}",
                    param=f"events[{pos}].item_id",
                    code="unknown_item",
                )
        # An event sent without a timestamp happened now: it is the user's most recent one.
        stamped = [
            e if "timestamp" in e.model_fields_set else e.model_copy(update={"timestamp": time.time()})
            for e in request.events
        ]
        await run_in_threadpool(self.recommender.add_events, stamped)
        return EventsResponse(
            accepted=len(request.events), users=list(dict.fromkeys(e.user_id for e in request.events))
        )

    # -------------------------------------------------------------- chat completions

    def identify(self, request: ChatCompletionRequest, headers: Mapping[str, str]) -> ChatCompletionRequest:
        """The request with its user taken from the trusted front-end header, when one is configured.

        The header only names the user; the route still checks the API key may act for them.
        """
        if self.user_header is None:
            return request
        named = (headers.get(self.user_header) or "").strip()[:MAX_USER_ID]
        if not named:
            return request
        if request.user_id is not None and request.user_id != named:
            raise APIError(
                400,
                f"'user' ({request.user_id!r}) contradicts the {self.user_header} header ({named!r}).",
                param="user",
                code="conflicting_user",
            )
        return request.model_copy(update={"user": named})

    def wants_json(self, request: ChatCompletionRequest) -> bool:
        """Refuse what this server cannot honour (400, naming the parameter, as vLLM does); True when the
        answer's content is to be the ``RecommendationResult`` JSON instead of prose."""
        self.check_model(request.model)
        choice = request.tool_choice
        if isinstance(choice, dict) or choice not in (None, "none", "auto"):
            raise _unsupported(
                "tool_choice", f"tool_choice {choice!r} is not supported: this model does not call tools."
            )
        if request.tools and choice != "none":
            raise _unsupported(
                "tools",
                "This model does not call tools; send no 'tools' (or tool_choice 'none'). recagent's own tools "
                "are available to agents as LangChain tools (docs/agent-mode.md).",
            )
        fmt = request.response_format
        if fmt is None or fmt.type == "text":
            return False
        if fmt.type == "json_object":
            return True
        if fmt.type == "json_schema":
            spec = fmt.json_schema or {}
            schema = spec.get("schema") or {}
            if RESULT_SCHEMA_NAME in (spec.get("name"), schema.get("title")):
                return True
            raise _unsupported(
                "response_format",
                f"Only the {RESULT_SCHEMA_NAME} schema can be honoured (its JSON is the answer); got "
                f"{spec.get('name')!r}.",
            )
        raise _unsupported("response_format", f"response_format type {fmt.type!r} is not supported.")

    def to_recommendation_request(
        self, request: ChatCompletionRequest, grant: KeyGrant = OPEN_GRANT
    ) -> RecommendationRequest:
        user_turns = [m.text.strip() for m in request.messages if m.role == "user"]
        user_turns = [t for t in user_turns if t]
        # The latest photo a user message holds asks for items like it ("more like this photo").
        photos = [url for m in request.messages if m.role == "user" for url in m.images]
        if not user_turns and not photos:
            raise APIError(
                422,
                "messages must contain at least one non-empty user message",
                param="messages",
                code="no_user_message",
            )
        options = request.recagent
        return RecommendationRequest(
            diversity=options.diversity,
            user_id=request.user_id,
            query=user_turns[-1] if user_turns else None,
            history=user_turns[:-1][-100:],
            image=photos[-1] if photos else None,
            session_id=grant.session_scope(request.user_id, request.session_id),
            k=options.k,
            filters=options.filters,
            exclude_seen=options.exclude_seen,
            justify=options.justify,
        )

    def usage(self, request: ChatCompletionRequest, answer: str) -> Usage:
        """Prompt and completion tokens with the served model's tokenizer."""
        conversation: list[ChatMessage] = [
            {"role": m.role if m.role != "developer" else "system", "content": m.text}
            for m in request.messages
            if m.role != "tool"
        ]
        prompt, completion = self.tokens.prompt(conversation), self.tokens.text(answer)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    async def _response(
        self,
        request: ChatCompletionRequest,
        text: str,
        result: RecommendationResult | None,
        mode: ResponseMode,
    ) -> ChatCompletionResponse:
        return ChatCompletionResponse(
            model=self.model_name,
            choices=[Choice(message=AssistantMessage(content=text))],
            usage=await run_in_threadpool(self.usage, request, text),
            recommendations=result,
            mode=mode,
        )

    @staticmethod
    def task_prompt(request: ChatCompletionRequest) -> str | None:
        """The front-end housekeeping prompt this request is, if it is one (see ``tasks``)."""
        last = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
        return last if is_task_prompt(last) else None

    async def chat(
        self, request: ChatCompletionRequest, grant: KeyGrant = OPEN_GRANT
    ) -> ChatCompletionResponse:
        as_json = self.wants_json(request)
        task = self.task_prompt(request)
        if task is not None:
            return await self._response(request, task_answer(task), None, "task")
        rec_request = self.to_recommendation_request(request, grant)
        # A photo goes to the pipeline, which sees it; the tool-calling agent would not.
        if self.agent is not None and rec_request.image is None:
            messages: list[ChatMessage] = [
                {"role": m.role, "content": m.text}
                for m in request.messages
                if m.role in ("user", "assistant")
            ]
            turn = await self.agent.arun(
                messages, user_id=rec_request.user_id, session_id=rec_request.session_id
            )
            picks = turn.results[-1] if turn.results else None
            text = picks.model_dump_json() if as_json and picks is not None else turn.text
            return await self._response(request, text, picks, "agent")
        result = await self.recommend(rec_request)
        text = result.model_dump_json() if as_json else answer_text(result)
        return await self._response(request, text, result, "pipeline")

    async def prepare_stream(
        self, request: ChatCompletionRequest, grant: KeyGrant = OPEN_GRANT
    ) -> AsyncIterator[str]:
        """Validate and rank before the first byte, so errors are proper HTTP errors, then stream."""
        as_json = self.wants_json(request)
        has_photo = any(m.images for m in request.messages if m.role == "user")
        if (self.agent is not None and not has_photo) or as_json or self.task_prompt(request) is not None:
            # One piece: an agent's turn, a JSON document or a task answer is only useful whole.
            response = await self.chat(request, grant)
            return self._stream_whole(request, response)
        rec_request = self.to_recommendation_request(request, grant)
        try:
            profile, ranked = await run_in_threadpool(self.recommender.rank, rec_request)
        except UnknownUserError as exc:
            raise APIError.from_error(exc, "user") from exc
        return self._stream_pipeline(request, rec_request, profile, ranked)

    def _chunk(
        self,
        cid: str,
        created: int,
        delta: DeltaMessage,
        event: StreamEvent | None = None,
        finish: bool = False,
        usage: Usage | None = None,
        choices: bool = True,
    ) -> str:
        chunk = ChatCompletionChunk(
            id=cid,
            created=created,
            model=self.model_name,
            choices=[ChunkChoice(delta=delta, finish_reason="stop" if finish else None)] if choices else [],
            usage=usage,
            recagent=event,
        )
        return f"data: {chunk.model_dump_json()}\n\n"

    async def _stream_pipeline(
        self,
        request: ChatCompletionRequest,
        rec_request: RecommendationRequest,
        profile: Any,
        ranked: RecommendationResult,
    ) -> AsyncIterator[str]:
        cid, created = completion_id(), now()
        yield self._chunk(cid, created, DeltaMessage(role="assistant", content=""))
        text = ranked_text(ranked)
        yield self._chunk(
            cid, created, DeltaMessage(content=text), StreamEvent(event="ranked", result=ranked)
        )
        final = ranked
        if rec_request.justify and ranked.recommendations:
            justified: list[Recommendation] = []
            picks = self.recommender.justify_each(profile, ranked, rec_request.query)
            # One pick at a time, off the event loop, so each justification reaches the client as it exists.
            while (rec_done := await run_in_threadpool(next, picks, None)) is not None:
                justified.append(rec_done)
                piece = justification_text(rec_done)
                text += piece
                event = StreamEvent(
                    event="justification",
                    rank=rec_done.rank,
                    item_id=rec_done.item.id,
                    justification=rec_done.justification.model_dump(mode="json")
                    if rec_done.justification
                    else None,
                    evidence=[e.model_dump(mode="json") for e in rec_done.evidence],
                )
                yield self._chunk(cid, created, DeltaMessage(content=piece), event)
            final = ranked.model_copy(update={"recommendations": justified})
        yield self._chunk(cid, created, DeltaMessage(), StreamEvent(event="done", result=final), finish=True)
        if request.stream_options is not None and request.stream_options.include_usage:
            usage = await run_in_threadpool(self.usage, request, text)
            yield self._chunk(cid, created, DeltaMessage(), usage=usage, choices=False)
        yield "data: [DONE]\n\n"

    async def _stream_whole(
        self, request: ChatCompletionRequest, response: ChatCompletionResponse
    ) -> AsyncIterator[str]:
        cid, created = response.id, response.created
        yield self._chunk(cid, created, DeltaMessage(role="assistant", content=""))
        if response.recommendations is not None:
            yield self._chunk(
                cid,
                created,
                DeltaMessage(content=""),
                StreamEvent(event="ranked", result=response.recommendations),
            )
        for line in response.choices[0].message.content.splitlines(keepends=True):
            yield self._chunk(cid, created, DeltaMessage(content=line))
        yield self._chunk(
            cid,
            created,
            DeltaMessage(),
            StreamEvent(event="done", result=response.recommendations),
            finish=True,
        )
        if request.stream_options is not None and request.stream_options.include_usage:
            yield self._chunk(cid, created, DeltaMessage(), usage=response.usage, choices=False)
        yield "data: [DONE]\n\n"


def error_body(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code or str(status)}}


def sse_json(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"
