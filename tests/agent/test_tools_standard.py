"""LangChain's standard tool suites (``langchain-tests``) on recagent's tools over the in-process pipeline
(real encoder and FAISS index on ml-100k, the tiny random Llama); the remote tools run the same suites against
a real server in ``tests/ui/test_api_clients.py``."""

from __future__ import annotations

import pytest
from langchain_core.tools import BaseToolkit

from recagent.agent import Recommender
from recagent.agent.tools import RecagentToolkit
from tests.agent.standard_suites import ServiceTool, standard_suites


class _LocalTool(ServiceTool):
    @pytest.fixture(autouse=True)
    def _pipeline(self, recommender: Recommender) -> None:
        type(self).service = recommender


globals().update(standard_suites(_LocalTool, user_id="1", prefix=""))


def test_toolkit_gives_both_tools_bound_or_not(recommender: Recommender) -> None:
    toolkit = RecagentToolkit(recommender=recommender)
    assert isinstance(toolkit, BaseToolkit)
    assert [t.name for t in toolkit.get_tools()] == ["recommend", "user_profile"]
    open_schema = toolkit.get_tools()[0].tool_call_schema.model_json_schema()
    assert "user_id" in open_schema["properties"]
    bound = RecagentToolkit(recommender=recommender, user_id="1").get_tools()
    assert "user_id" not in bound[0].tool_call_schema.model_json_schema()["properties"]
    message = bound[0].invoke(
        {"type": "tool_call", "id": "c", "name": "recommend", "args": {"request": "a comedy", "k": 2}}
    )
    assert message.artifact["user_id"] == "1"
