"""The OpenAI-compatible HTTP API, laid out like vLLM's entrypoints: protocol, serving, router, server."""

from __future__ import annotations

from .server import APISettings, build_app, run_server
from .serving import APIError, OpenAIServing

__all__ = ["APIError", "APISettings", "OpenAIServing", "build_app", "run_server"]
