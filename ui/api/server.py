"""The API application: ``build_app`` assembles it around one ``Recommender``; ``run_server`` serves it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recagent.agent import RecagentError, Recommender, Settings
from recagent.agent.agent_mode import ToolCallingChat
from recagent.agent.llm.tokens import TokenCounter

from ..errors import APIError
from .auth import OPEN_GRANT, KeyGrant, configured_grants, find_grant
from .router import router
from .serving import OpenAIServing, error_body

log = logging.getLogger("recagent.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


async def _send_error(
    send: Send, status: int, message: str, type_: str, code: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(status, message, type_, code=code)).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Bearer-key check and body-size limit, before routing so neither can be bypassed by a bad body.

    The key's grant (which users it may act for) is put in ``scope["state"]["grant"]`` for the routes.
    """

    def __init__(self, app: ASGIApp, grants: list[KeyGrant], max_body_bytes: int) -> None:
        self.app = app
        self.grants = grants
        self.max_body_bytes = max_body_bytes

    def _grant(self, scope: Scope) -> KeyGrant | None:
        if not self.grants or scope["path"] in OPEN_PATHS:
            return OPEN_GRANT
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        return find_grant(self.grants, token.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        grant = self._grant(scope)
        if grant is None:
            await _send_error(
                send,
                401,
                "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
                "authentication_error",
                "invalid_api_key",
                {"www-authenticate": "Bearer"},
            )
            return
        scope.setdefault("state", {})["grant"] = grant
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = (
            f"Request body exceeds {self.max_body_bytes} bytes; send fewer or shorter messages or events."
        )
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _send_error(send, 413, too_large, "invalid_request_error", "request_too_large")
            return
        # Chunked bodies carry no length: read them up to the limit, then hand the buffered body on.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_error(send, 413, too_large, "invalid_request_error", "request_too_large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class ConcurrencyLimitMiddleware:
    """Back-pressure: at most ``limit`` requests run at once, up to ``queue`` more wait (at most ``timeout``
    seconds) for a slot, and the rest get 429 with ``Retry-After`` at once instead of piling onto the CPU.

    A streamed answer holds its slot until its last chunk. ``/health`` and the schema pages skip the queue.
    """

    def __init__(self, app: ASGIApp, limit: int, queue: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.queue = queue
        self.timeout = timeout
        self._slots = asyncio.Semaphore(limit)
        self.waiting = 0
        self.running = 0
        self.rejected = 0

    async def _reject(self, send: Send, why: str) -> None:
        self.rejected += 1
        await _send_error(
            send,
            429,
            f"The server is at capacity ({why}); retry after a moment.",
            "rate_limit_error",
            "server_busy",
            {"retry-after": "1"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._slots.locked():
            if self.waiting >= self.queue:
                await self._reject(send, f"{self.limit} running, {self.waiting} queued")
                return
            self.waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout)
            except TimeoutError:
                await self._reject(send, f"no slot within {self.timeout:g} s")
                return
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            self._slots.release()


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return JSONResponse(
            error_body(
                400,
                f"The request body is not valid JSON: {reason}.",
                "invalid_request_error",
                code="invalid_json",
            ),
            status_code=400,
        )
    messages = []
    for e in errors[:5]:
        where = _location(e.get("loc", ()))
        messages.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    first = _location(errors[0].get("loc", ())) if errors else None
    return JSONResponse(
        error_body(
            422,
            "Invalid request: " + "; ".join(messages) + more,
            "invalid_request_error",
            param=first or None,
            code="invalid_request",
        ),
        status_code=422,
    )


def build_app(
    recommender: Recommender,
    settings: Settings | None = None,
    agent: ToolCallingChat | None = None,
) -> FastAPI:
    """The FastAPI app over ``recommender``; ``agent`` switches chat completions to agent mode."""
    settings = settings or Settings()
    app = FastAPI(
        title="recagent API",
        version="1.0",
        description="OpenAI-compatible chat completions plus structured recommendations, profiles and events.",
    )
    app.state.serving = OpenAIServing(
        recommender,
        model_name=settings.api_model_name,
        agent=agent,
        tokens=TokenCounter(recommender.backend, settings.cache_dir),
        user_header=settings.api_user_header,
    )
    app.include_router(router)

    @app.exception_handler(RecagentError)
    async def _recagent_error(_: Request, exc: RecagentError) -> JSONResponse:
        # APIError and every other recagent error (mapped once, in ui/errors.py); routes that can name the
        # offending parameter raise APIError.from_error(exc, param) themselves.
        error = APIError.from_error(exc)
        return JSONResponse(
            error_body(error.status, error.message, error.type, error.param, error.code),
            status_code=error.status,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(exc.status_code, str(exc.detail), kind), status_code=exc.status_code)

    # Added last, runs first: a bad key or an oversized body is refused before it takes a slot.
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        limit=settings.api_max_concurrency,
        queue=settings.api_max_queue,
        timeout=settings.api_queue_timeout_s,
    )
    app.add_middleware(
        GuardMiddleware, grants=configured_grants(settings), max_body_bytes=settings.api_max_body_bytes
    )
    return app


def run_server(
    recommender: Recommender,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    agent: ToolCallingChat | None = None,
) -> None:
    import uvicorn

    settings = settings or Settings()
    app = build_app(recommender, settings, agent)
    app.state.serving.tokens.load()  # usage counts need the tokenizer: load it before the first request
    grants = configured_grants(settings)
    bound = sum(not g.everyone for g in grants)
    auth = (
        f"{len(grants)} API key(s), {bound} bound to users"
        if grants
        else "no API keys (RECAGENT_API_KEYS unset)"
    )
    print(f"recagent API on http://{host}:{port}/v1 ({auth}); schema at /openapi.json", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
