"""LangChain's standard tool suites (``langchain-tests``) for recagent's two tools over any recommendation service.

``standard_suites(base, examples)`` makes one unit and one integration test class per tool, all on ``base``,
whose autouse fixture supplies the service; a test module puts them in its namespace for pytest to collect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from recagent.agent.tools import ProfileTool, RecommendTool


class ServiceTool:
    """Base of the generated suites: ``service`` is set by the using module's autouse fixture."""

    service: Any = None

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"recommender": self.service}


def standard_suites(base: type[ServiceTool], user_id: str, prefix: str) -> dict[str, type]:
    """``{class name: class}`` for RecommendTool and ProfileTool, unit and integration, acting for ``user_id``."""
    examples: Mapping[type, dict[str, Any]] = {
        RecommendTool: {"user_id": user_id, "request": "a comedy", "k": 2},
        ProfileTool: {"user_id": user_id},
    }
    suites: dict[str, type] = {}
    for tool, example in examples.items():
        for suite in (ToolsUnitTests, ToolsIntegrationTests):
            name = f"Test{prefix}{tool.__name__}{suite.__name__.removeprefix('Tools').removesuffix('Tests')}"
            suites[name] = type(
                name, (base, suite), {"tool_constructor": tool, "tool_invoke_params_example": example}
            )
    return suites
