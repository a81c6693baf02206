"""HTTP routes. Thin: parse, authorise, call :class:`OpenAIServing`, shape the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse

from recagent.agent import RecommendationRequest, RecommendationResult

from ..errors import APIError
from .auth import OPEN_GRANT, KeyGrant
from .protocol import (
    MAX_USER_ID,
    ChatCompletionRequest,
    ChatCompletionResponse,
    DeletedResponse,
    ErrorResponse,
    EventsRequest,
    EventsResponse,
    HealthResponse,
    ModelCard,
    ModelList,
    ProfileResponse,
)
from .serving import OpenAIServing, error_body, sse_json

UserId = Annotated[str, Path(min_length=1, max_length=MAX_USER_ID, description="The user's id.")]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Malformed JSON, or a parameter this server cannot honour (tools, response_format)",
        401: "Missing or wrong API key",
        403: "The API key is not bound to this user",
        404: "Unknown user or model",
        413: "Request body too large",
        422: "Body does not match the schema",
        429: "Server at capacity; retry after Retry-After seconds",
    }.items()
}


def serving(request: Request) -> OpenAIServing:
    return request.app.state.serving


Serving = Annotated[OpenAIServing, Depends(serving)]


def grant(request: Request) -> KeyGrant:
    """What the request's API key may do (set by the guard middleware; everything when auth is off)."""
    found: KeyGrant | None = getattr(request.state, "grant", None)
    return found if found is not None else OPEN_GRANT


Grant = Annotated[KeyGrant, Depends(grant)]


def authorise(key: KeyGrant, *user_ids: str | None, param: str = "user") -> None:
    """403 unless the key is bound to every one of ``user_ids``; the same answer whether the user exists or not."""
    for user_id in dict.fromkeys(user_ids):
        if not key.allows(user_id):
            raise APIError(
                403,
                f"This API key may not act for user {user_id!r}.",
                "permission_error",
                param=param,
                code="user_not_allowed",
            )


router = APIRouter(responses=ERRORS)


@router.get("/health", response_model=HealthResponse, tags=["server"])
async def health(s: Serving) -> HealthResponse:
    return s.health()


@router.get("/v1/models", response_model=ModelList, tags=["openai"])
async def list_models(s: Serving) -> ModelList:
    return s.models()


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, tags=["openai"])
async def retrieve_model(model_id: str, s: Serving) -> ModelCard:
    return s.model(model_id)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    tags=["openai"],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream=true"}
    },
)
async def chat_completions(body: ChatCompletionRequest, request: Request, s: Serving, key: Grant) -> Any:
    body = s.identify(body, request.headers)
    authorise(key, body.user_id)
    if not body.stream:
        return await s.chat(body, key)
    stream = await s.prepare_stream(body, key)
    return StreamingResponse(_guarded(stream), media_type="text/event-stream")


async def _guarded(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """Once streaming has begun the status is sent; a failure becomes a final error event."""
    try:
        async for piece in stream:
            yield piece
    except Exception as exc:  # noqa: BLE001 - reported to the client, which cannot get a status any more
        yield sse_json(error_body(500, f"stream failed: {exc}", "server_error"))
        yield "data: [DONE]\n\n"


@router.post("/v1/recommendations", response_model=RecommendationResult, tags=["recagent"])
async def recommendations(body: RecommendationRequest, s: Serving, key: Grant) -> RecommendationResult:
    authorise(key, body.user_id, param="user_id")
    scoped = body.model_copy(update={"session_id": key.session_scope(body.user_id, body.session_id)})
    return await s.recommend(scoped)


@router.get("/v1/users/{user_id}/profile", response_model=ProfileResponse, tags=["recagent"])
async def get_profile(user_id: UserId, s: Serving, key: Grant) -> ProfileResponse:
    authorise(key, user_id, param="user_id")
    return await s.profile(user_id)


@router.delete("/v1/users/{user_id}/profile", response_model=DeletedResponse, tags=["recagent"])
async def delete_profile(user_id: UserId, s: Serving, key: Grant) -> DeletedResponse:
    authorise(key, user_id, param="user_id")
    return await s.delete_profile(user_id)


@router.post("/v1/events", response_model=EventsResponse, tags=["recagent"])
async def events(body: EventsRequest, s: Serving, key: Grant) -> EventsResponse:
    authorise(key, *(e.user_id for e in body.events), param="events")
    return await s.add_events(body)
