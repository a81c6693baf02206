"""``RecagentClient``: a running recagent HTTP API behind the same two calls as the in-process ``Recommender``.

The LangChain tools take either (``RecommendationService``), so an agent in another process uses recagent over
HTTP with the very tools the in-process agent has — and this module imports neither torch, FAISS nor the
pipeline: only httpx and the pydantic contracts.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field, SecretStr

from .errors import RemoteError, UnknownUserError
from .profiles.profile import UserProfile
from .schemas import RecommendationRequest, RecommendationResult


@runtime_checkable
class RecommendationService(Protocol):
    """What the tools call: the in-process ``Recommender`` or a ``RecagentClient``."""

    def recommend(self, request: RecommendationRequest) -> RecommendationResult: ...

    def profile(self, user_id: str) -> UserProfile: ...


class RecagentClient(BaseModel):
    """The recagent HTTP API (``recagent serve``) at ``base_url``, e.g. ``http://127.0.0.1:8000/v1``."""

    base_url: str = Field(default="http://127.0.0.1:8000/v1", description="The API root, ending in /v1.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key, when the server requires one.")
    timeout_s: float = Field(default=120.0, gt=0, description="Per request; justifications can take seconds.")

    def _headers(self) -> dict[str, str]:
        key = self.api_key.get_secret_value() if self.api_key is not None else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        url = self.base_url.rstrip("/") + path
        try:
            response = httpx.request(method, url, json=json, headers=self._headers(), timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise RemoteError(f"recagent API at {self.base_url} unreachable: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            if response.status_code == 404 and "user" in message:
                raise UnknownUserError(message)
            raise RemoteError(f"recagent API {response.status_code}: {message}", response.status_code)
        return response.json()

    def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        data = self._call("POST", "/recommendations", request.model_dump(mode="json"))
        return RecommendationResult.model_validate(data)

    def profile(self, user_id: str) -> UserProfile:
        data = self._call("GET", f"/users/{quote(user_id, safe='')}/profile")
        return UserProfile.model_validate(data["profile"])
