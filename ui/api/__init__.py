"""The OpenAI-compatible HTTP API, laid out like vLLM's entrypoints: protocol, serving, router, server."""

from __future__ import annotations

from ..errors import APIError
from .auth import configured_grants
from .server import build_app, run_server
from .serving import OpenAIServing

__all__ = ["APIError", "configured_grants", "OpenAIServing", "build_app", "run_server"]
