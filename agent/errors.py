"""The agent layer's errors; the data errors come from ``recagent.retrieval`` and are re-exported here."""

from __future__ import annotations

from recagent.retrieval.errors import (
    DataFileError,
    IndexFileError,
    RecagentError,
    UnknownItemError,
    UnknownUserError,
)


class LLMError(RecagentError, RuntimeError):
    """The model could not answer (not loaded, server down, malformed output).

    ``status_code`` is the LLM server's HTTP status when it answered with an error, else None.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RemoteError(RecagentError, RuntimeError):
    """A recagent HTTP API answered with an error, or could not be reached (``status_code`` None)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


__all__ = [
    "DataFileError",
    "IndexFileError",
    "LLMError",
    "RecagentError",
    "RemoteError",
    "UnknownItemError",
    "UnknownUserError",
]
