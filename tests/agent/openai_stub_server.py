"""A real OpenAI-shaped HTTP server on 127.0.0.1 whose answers are computed by a real (tiny) model.

It speaks the subset of vLLM's chat API that :class:`OpenAIBackend` uses (top_logprobs, the
continue_final_message + prompt_logprobs probe, response_format json_schema) and has switches to misbehave:
delays, HTTP 500s, non-JSON bodies, missing logprobs, a top_logprobs cap, no structured output, bad choices.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from recagent.agent import LocalBackend


@dataclass
class Switches:
    delay_s: float = 0.0
    fail_next: int = 0
    garbage: bool = False
    drop_logprobs: bool = False
    max_logprobs: int = 20
    prompt_logprobs: bool = True
    response_format: bool = True
    bad_choice: bool = False
    tokenize: bool = True
    models: list[str] = field(default_factory=lambda: ["recagent-base", "recagent-ranker"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Which replica answered: returned as the completion's system_fingerprint; the X-User-Id of each request.
    worker: str = "stub"
    user_headers: list[str | None] = field(default_factory=list)


def _next_token_logprobs(backend: LocalBackend, prompt: str) -> tuple[list[int], torch.Tensor]:
    ids = backend.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        logits = backend.model(**ids).logits[0].float()
    return ids["input_ids"][0].tolist(), torch.log_softmax(logits, dim=-1)


def build_app(backend: LocalBackend, switches: Switches) -> FastAPI:
    app = FastAPI()
    tok = backend.tokenizer

    def completion(content: str, logprobs: Any = None, **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": logprobs,
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "system_fingerprint": switches.worker,
            **extra,
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "worker": switches.worker}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in switches.models],
        }

    @app.post("/tokenize")
    async def tokenize(request: Request) -> Response:
        if not switches.tokenize:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        body = await request.json()
        tokens = tok.encode(body["prompt"], add_special_tokens=bool(body.get("add_special_tokens", True)))
        return JSONResponse({"count": len(tokens), "tokens": tokens, "max_model_len": 2048})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        switches.requests.append(body)
        switches.user_headers.append(request.headers.get("x-user-id"))
        if switches.delay_s:
            time.sleep(switches.delay_s)
        if switches.fail_next > 0:
            switches.fail_next -= 1
            return JSONResponse({"error": {"message": "engine overloaded", "code": 500}}, status_code=500)
        if switches.garbage:
            return PlainTextResponse("<html>proxy error</html>", status_code=200)
        messages = body["messages"]
        if body.get("continue_final_message"):
            prompt = tok.apply_chat_template(
                messages, tokenize=False, continue_final_message=True, add_generation_prompt=False
            )
            ids, logprobs = _next_token_logprobs(backend, prompt)
            extra: dict[str, Any] = {}
            if switches.prompt_logprobs and body.get("prompt_logprobs") is not None:
                last = ids[-1]
                entry = {
                    str(last): {
                        "logprob": float(logprobs[-2, last]),
                        "rank": int((logprobs[-2] > logprobs[-2, last]).sum()) + 1,
                        "decoded_token": tok.decode([last]),
                    }
                }
                extra["prompt_logprobs"] = [None] * (len(ids) - 1) + [entry]
            return JSONResponse(completion("", **extra))
        response_format = body.get("response_format")
        if response_format is not None:
            if not switches.response_format:
                return JSONResponse({"error": {"message": "response_format unsupported"}}, status_code=400)
            properties = response_format["json_schema"]["schema"]["properties"]
            if "label" in properties:
                labels = properties["label"]["enum"]
                scores = backend.label_scores([messages], labels)[0]
                best = labels[max(range(len(labels)), key=lambda i: scores[i])]
                return JSONResponse(completion(json.dumps({"label": "Q9" if switches.bad_choice else best})))
            text = backend.generate([messages], int(body.get("max_tokens", 16)))[0]
            return JSONResponse(completion(json.dumps({"sentence": text or "A fine pick for you."})))
        if body.get("logprobs") and body.get("logprob_token_ids") and switches.tokenize:
            _, logprobs = _next_token_logprobs(backend, backend.render(messages))
            best = int(torch.argmax(logprobs[-1]))
            top = [
                {"token": tok.decode([i]), "logprob": float(logprobs[-1, i]), "bytes": None}
                for i in [best, *body["logprob_token_ids"]]
            ]
            chosen = None if switches.drop_logprobs else {"content": [{**top[0], "top_logprobs": top}]}
            return JSONResponse(completion(top[0]["token"], chosen))
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            if k > switches.max_logprobs:
                return JSONResponse(
                    {"error": {"message": f"top_logprobs {k} > max_logprobs {switches.max_logprobs}"}},
                    status_code=400,
                )
            _, logprobs = _next_token_logprobs(backend, backend.render(messages))
            values, indices = torch.topk(logprobs[-1], min(max(k, 1), logprobs.shape[-1]))
            top = [
                {"token": tok.decode([int(i)]), "logprob": float(v), "bytes": None}
                for v, i in zip(values, indices, strict=True)
            ]
            content = [{**top[0], "top_logprobs": top[:k]}]
            chosen = None if switches.drop_logprobs else {"content": content}
            return JSONResponse(completion(top[0]["token"], chosen))
        text = backend.generate([messages], int(body.get("max_tokens", 16)))[0]
        return JSONResponse(completion(text))

    return app


class StubServer:
    def __init__(self, backend: LocalBackend) -> None:
        self.switches = Switches()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(build_app(backend, self.switches), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> Switches:
        fresh = Switches(worker=self.switches.worker)
        for name in fresh.__dataclass_fields__:
            setattr(self.switches, name, getattr(fresh, name))
        return self.switches

    def start(self) -> StubServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
