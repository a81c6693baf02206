"""RecommendTool / ProfileTool run the real pipeline (real encoder, FAISS, tiny Llama); a LangChain 1.x
agent built with ``create_agent`` calls them, driven by a scripted tool-calling chat model."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import ToolMessage

from recagent.agent import RecommendationResult, Recommender
from recagent.agent.agent_mode import ToolCallingChat, chat_mode, make_agent_model
from recagent.agent.settings import Settings
from recagent.agent.tools import ProfileTool, RecommendInput, RecommendTool, recagent_tools
from recagent.retrieval import Dataset
from tests.scripted_chat import ScriptedToolCaller


def test_args_schema_is_what_other_agents_see(recommender: Recommender) -> None:
    tool = RecommendTool(recommender=recommender)
    schema = tool.tool_call_schema.model_json_schema()
    assert {
        "user_id",
        "request",
        "k",
        "include_genres",
        "exclude_genres",
        "year_min",
        "year_max",
        "diversity",
        "image",
    } == set(schema["properties"])
    assert schema["properties"]["k"]["maximum"] == 20
    with pytest.raises(ValueError, match="less than or equal to 20"):
        RecommendInput(k=99)


def test_tool_call_returns_summary_and_structured_artifact(recommender: Recommender, ml100k: Dataset) -> None:
    tool = RecommendTool(recommender=recommender)
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "recommend",
            "args": {
                "user_id": "1",
                "request": "a comedy",
                "k": 3,
                "include_genres": ["Comedy"],
                "year_min": 1990,
            },
        }
    )
    assert isinstance(message, ToolMessage)
    result = RecommendationResult.model_validate(message.artifact)
    rated = {e.item_id for e in ml100k.history("1")}
    assert len(result.recommendations) == 3
    for rec in result.recommendations:
        assert "Comedy" in rec.item.genres and rec.item.year is not None and rec.item.year >= 1990
        assert rec.item.id not in rated
        assert f"[{rec.item.id}] {rec.item.display_title}" in message.content
        assert rec.justification is not None and rec.justification.text in message.content


def test_plain_invoke_and_async(recommender: Recommender) -> None:
    tool = RecommendTool(recommender=recommender)
    text = tool.invoke({"user_id": "2", "k": 2})
    assert text.startswith("Top 2 for user 2")
    async_text = asyncio.run(tool.ainvoke({"user_id": "2", "k": 2}))
    assert async_text == text  # same pipeline, same answer
    profile = ProfileTool(recommender=recommender)
    summary = asyncio.run(profile.ainvoke({"user_id": "2"}))
    top = recommender.profile("2").top_interests(1)[0]
    assert summary.startswith("User 2:") and f"{top.tag} ({top.weight:+.2f})" in summary


def test_unknown_user_becomes_a_message_the_agent_can_act_on(recommender: Recommender) -> None:
    tool = RecommendTool(recommender=recommender)
    assert "unknown user 'ghost'" in tool.invoke({"user_id": "ghost"})
    assert "no profile yet" in ProfileTool(recommender=recommender).invoke({"user_id": "ghost"})
    # With a request, a new user gets recommendations straight away (cold start).
    assert tool.invoke({"user_id": "ghost", "request": "space adventure", "k": 1}).startswith(
        "Top 1 for user ghost"
    )


def test_create_agent_calls_recommend_tool(recommender: Recommender, ml100k: Dataset) -> None:
    from langchain.agents import create_agent

    model = ScriptedToolCaller(args_for=lambda text: {"user_id": "42", "request": text, "k": 3})
    agent = create_agent(model, recagent_tools(recommender), system_prompt="You recommend movies.")
    state = agent.invoke({"messages": [{"role": "user", "content": "a thriller with a twist"}]})
    tool_messages = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1 and tool_messages[0].name == "recommend"
    result = RecommendationResult.model_validate(tool_messages[0].artifact)
    assert result.user_id == "42" and len(result.recommendations) == 3
    assert all(r.item.id in ml100k.catalog for r in result.recommendations)
    # The same request straight through the pipeline gives the same picks: the tool adds nothing of its own.
    direct = recommender.recommend(
        RecommendInput(user_id="42", request="a thriller with a twist", k=3).to_request()
    )
    assert [r.item.id for r in direct.recommendations] == [r.item.id for r in result.recommendations]
    final = state["messages"][-1].content
    assert final.startswith("Here is what I found.") and result.recommendations[0].item.display_title in final


def test_create_agent_async_with_profile_tool(recommender: Recommender) -> None:
    from langchain.agents import create_agent

    model = ScriptedToolCaller(tool_name="user_profile", args_for=lambda _: {"user_id": "5"})
    agent = create_agent(model, recagent_tools(recommender))
    state = asyncio.run(agent.ainvoke({"messages": [{"role": "user", "content": "what do I like?"}]}))
    tool_message = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert tool_message.artifact["user_id"] == "5" and "vector" not in tool_message.artifact
    assert tool_message.artifact["interests"][0]["evidence"]


def test_agent_mode_replaces_prose_naming_items_it_was_not_given(recommender: Recommender) -> None:
    honest = ToolCallingChat(
        recommender, ScriptedToolCaller(args_for=lambda t: {"user_id": "1", "request": t, "k": 2})
    )
    turn = honest.run([{"role": "user", "content": "a musical"}], user_id="1")
    assert turn.tool_calls == 1 and len(turn.results) == 1 and not turn.replaced_text

    liar = ToolCallingChat(
        recommender,
        ScriptedToolCaller(
            args_for=lambda t: {"user_id": "1", "request": t, "k": 2},
            reply_prefix="Skip these and watch Made Up Movie (1999) or Star Wars (1977) instead.\n",
        ),
    )
    turn = liar.run([{"role": "user", "content": "a musical"}], user_id="1")
    assert turn.replaced_text and "Made Up Movie" not in turn.text and "Star Wars" not in turn.text
    assert turn.text.startswith("Top 2 for user 1")


def test_which_mode_runs_when() -> None:
    assert chat_mode(Settings(llm_base_url=None)) == "pipeline"
    assert chat_mode(Settings(llm_base_url="http://127.0.0.1:9/v1")) == "agent"
    assert chat_mode(Settings(llm_base_url="http://127.0.0.1:9/v1", chat_mode="pipeline")) == "pipeline"
    with pytest.raises(ValueError, match="RECAGENT_LLM_BASE_URL"):
        make_agent_model(Settings(llm_base_url=None))
    model = make_agent_model(Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen"))
    assert model.model_name == "qwen" and str(model.openai_api_base).startswith("http://127.0.0.1:9")
