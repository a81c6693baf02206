"""The faces' errors, and the one mapping from recagent's errors to HTTP statuses (the CLI's is ``ui/cli``)."""

from __future__ import annotations

from recagent.agent.errors import DataFileError, LLMError, RecagentError, UnknownItemError, UnknownUserError


class APIKeyError(RecagentError, ValueError):
    """The API key configuration is malformed; the message says where."""


class APIError(RecagentError):
    """An error answered as OpenAI's error object with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    @classmethod
    def from_error(cls, exc: RecagentError, param: str | None = None) -> APIError:
        """The HTTP answer to one of recagent's errors: unknown user 404, unknown item or bad data 422,
        the model unavailable 503, anything else 500."""
        if isinstance(exc, APIError):
            return exc
        if isinstance(exc, UnknownUserError):
            return cls(404, str(exc), "not_found_error", param=param, code="user_not_found")
        if isinstance(exc, UnknownItemError):
            return cls(422, str(exc), param=param, code="item_not_found")
        if isinstance(exc, DataFileError):
            return cls(422, str(exc), param=param, code="invalid_data")
        if isinstance(exc, LLMError):
            return cls(503, str(exc), "server_error", code="model_unavailable")
        return cls(500, str(exc), "server_error")
