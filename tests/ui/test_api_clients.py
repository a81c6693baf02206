"""The API as its clients use it: the real ``openai`` SDK, LangChain's ``ChatOpenAI``, a ``create_agent`` agent
over HTTP through the remote toolkit, Open WebUI's conventions — all against one real ``recagent serve``
process on 127.0.0.1 (real encoder and FAISS index on ml-100k, the tiny random Llama as ranker)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import ToolMessage

from recagent.agent import RecommendationResult
from recagent.agent.client import RecagentClient
from recagent.agent.tools import RecagentToolkit
from recagent.retrieval import ItemIndex
from recagent.ui.api.tasks import FOLLOW_UPS
from tests.agent.standard_suites import ServiceTool, standard_suites
from tests.scripted_chat import ScriptedToolCaller
from tests.ui.serve_process import recagent_serve

ADMIN_KEY = "admin-key"  # may act for every user
USER_10_KEY = "key-of-10"  # bound to user 10 only
USER_HEADER = "X-OpenWebUI-User-Id"
MESSAGES = [{"role": "user", "content": "a romantic comedy"}]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, ml100k_index: ItemIndex
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("served-api")
    ml100k_index.save(folder / "index")
    env = {"RECAGENT_API_KEYS": f"{ADMIN_KEY}:*;{USER_10_KEY}:10", "RECAGENT_API_USER_HEADER": USER_HEADER}
    with recagent_serve(folder / "index", folder, tiny_model_dir, env) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=served + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=120)


def _bad_request(call: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    body = caught.value.body
    assert isinstance(body, dict)
    return body


TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def test_tools_are_refused_naming_the_parameter(client: openai.OpenAI) -> None:
    create = client.chat.completions.create
    auto = _bad_request(lambda: create(model="recagent", messages=MESSAGES, tools=[TOOL]))
    assert auto["param"] == "tools" and auto["code"] == "unsupported_parameter"
    required = _bad_request(
        lambda: create(model="recagent", messages=MESSAGES, tools=[TOOL], tool_choice="required")
    )
    assert required["param"] == "tool_choice"
    named = {"type": "function", "function": {"name": "lookup"}}
    assert (
        _bad_request(lambda: create(model="recagent", messages=MESSAGES, tool_choice=named))["param"]
        == "tool_choice"
    )
    # tool_choice "none" means "answer in text": allowed, tools or not, as with OpenAI.
    plain = create(
        model="recagent",
        messages=MESSAGES,
        tools=[TOOL],
        tool_choice="none",
        extra_body={"recagent": {"justify": False}},
    )
    assert plain.choices[0].message.content and plain.choices[0].message.tool_calls is None


def test_response_format_json_schema_of_the_result_is_honoured(client: openai.OpenAI) -> None:
    schema = {"name": "RecommendationResult", "schema": RecommendationResult.model_json_schema()}
    response = client.chat.completions.create(
        model="recagent",
        messages=MESSAGES,
        user="10",
        response_format={"type": "json_schema", "json_schema": schema},
        extra_body={"recagent": {"k": 3, "justify": False}},
    )
    result = RecommendationResult.model_validate_json(response.choices[0].message.content or "")
    assert result.user_id == "10" and len(result.recommendations) == 3
    as_object = client.chat.completions.create(
        model="recagent",
        messages=MESSAGES,
        response_format={"type": "json_object"},
        extra_body={"recagent": {"justify": False}},
    )
    assert "recommendations" in json.loads(as_object.choices[0].message.content or "")
    other = {"name": "Weather", "schema": {"type": "object", "properties": {"celsius": {"type": "number"}}}}
    refused = _bad_request(
        lambda: client.chat.completions.create(
            model="recagent", messages=MESSAGES, response_format={"type": "json_schema", "json_schema": other}
        )
    )
    assert refused["param"] == "response_format" and "RecommendationResult" in refused["message"]


def test_models_retrieve(client: openai.OpenAI) -> None:
    assert client.models.retrieve("recagent").id == "recagent"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_usage_counts_tokens_of_the_served_model(client: openai.OpenAI, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    response = client.chat.completions.create(
        model="recagent", messages=MESSAGES, extra_body={"recagent": {"justify": False}}
    )
    content = response.choices[0].message.content or ""
    prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert response.usage is not None
    assert response.usage.prompt_tokens == len(tokenizer.encode(prompt, add_special_tokens=False))
    assert response.usage.completion_tokens == len(tokenizer.encode(content, add_special_tokens=False))
    assert response.usage.completion_tokens != len(content.split())  # tokens, not words
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_user_from_trusted_header_only_for_a_key_allowed_to_act_for_them(served: str) -> None:
    def ask(key: str, headers: dict[str, str], **body: Any) -> httpx.Response:
        payload = {"model": "recagent", "messages": MESSAGES, "recagent": {"k": 2, "justify": False}, **body}
        return httpx.post(
            served + "/v1/chat/completions",
            json=payload,
            headers={"Authorization": f"Bearer {key}", **headers},
            timeout=120,
        )

    named = ask(USER_10_KEY, {USER_HEADER: "10"})
    assert named.status_code == 200 and named.json()["recommendations"]["user_id"] == "10"
    other = ask(USER_10_KEY, {USER_HEADER: "11"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "user_not_allowed"
    contradicting = ask(ADMIN_KEY, {USER_HEADER: "10"}, user="11")
    assert contradicting.status_code == 400 and contradicting.json()["error"]["param"] == "user"
    assert ask(ADMIN_KEY, {}).json()["recommendations"]["user_id"] is None
    from_metadata = ask(ADMIN_KEY, {}, metadata={"user_id": "12"})
    assert from_metadata.json()["recommendations"]["user_id"] == "12"


OPEN_WEBUI_TITLE = """### Task:
Generate a concise, 3-5 word title with an emoji summarizing the chat history.
### Guidelines:
- The title should clearly represent the main theme or subject of the conversation.
### Output:
JSON format: { "title": "your concise title here" }
### Chat History:
<chat_history>
USER: a romantic comedy set in paris please
ASSISTANT: 1. Forget Paris (1995) ...
</chat_history>"""


def test_open_webui_task_prompts_get_a_short_answer_not_picks(client: openai.OpenAI, served: str) -> None:
    before = httpx.get(
        served + "/v1/users/10/profile", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).json()
    title = client.chat.completions.create(
        model="recagent", messages=[{"role": "user", "content": OPEN_WEBUI_TITLE}], user="10"
    )
    assert json.loads(title.choices[0].message.content or "") == {"title": "🎬 A romantic comedy set in"}
    assert title.model_extra is not None and title.model_extra["recommendations"] is None
    assert title.model_extra["mode"] == "task"
    follow_ups = OPEN_WEBUI_TITLE.replace(
        "Generate a concise, 3-5 word title", "Suggest 3-5 relevant follow-up questions"
    )
    follow_ups = follow_ups.replace(
        '{ "title": "your concise title here" }', '{ "follow_ups": ["Question 1?"] }'
    )
    answer = client.chat.completions.create(
        model="recagent", messages=[{"role": "user", "content": follow_ups}]
    )
    assert json.loads(answer.choices[0].message.content or "") == {"follow_ups": FOLLOW_UPS}
    after = httpx.get(
        served + "/v1/users/10/profile", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).json()
    assert after == before  # the task prompt's chat history went into no profile


def test_chat_openai_streams_with_usage_and_reads_the_structured_result(served: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="recagent",
        base_url=served + "/v1",
        api_key=ADMIN_KEY,
        max_retries=0,
        timeout=120,
        stream_usage=True,
        extra_body={"recagent": {"k": 3}},
    )
    chunks = list(llm.stream("a romantic comedy", user="10"))
    text = "".join(str(c.content) for c in chunks)
    assert "\n1. " in text and "\n2. " in text and "\n3. " in text
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] > 0 and usage[-1]["input_tokens"] > 0

    structured = llm.with_structured_output(RecommendationResult, method="json_schema")
    result = structured.invoke("a romantic comedy", user="10")
    assert isinstance(result, RecommendationResult)
    assert result.user_id == "10" and len(result.recommendations) == 3
    assert [r.item.display_title for r in result.recommendations][0] in text


def test_create_agent_recommends_over_http_through_the_remote_toolkit(served: str) -> None:
    from langchain.agents import create_agent

    toolkit = RecagentToolkit.remote(served + "/v1", api_key=USER_10_KEY, user_id="10")
    model = ScriptedToolCaller(args_for=lambda text: {"request": text, "k": 3})
    agent = create_agent(model, toolkit.get_tools(), system_prompt="You recommend movies.")
    state = agent.invoke({"messages": [{"role": "user", "content": "a thriller with a twist"}]})
    tool_messages = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_messages] == ["recommend"] and tool_messages[0].status == "success"
    result = RecommendationResult.model_validate(tool_messages[0].artifact)
    assert result.user_id == "10" and len(result.recommendations) == 3
    assert state["messages"][-1].content.startswith("Here is what I found.")
    # The key is bound to user 10: the server refuses another user even if a tool were unbound.
    stranger = RecagentToolkit.remote(served + "/v1", api_key=USER_10_KEY).get_tools()[0]
    refused = stranger.invoke(
        {"type": "tool_call", "id": "c1", "name": "recommend", "args": {"user_id": "11", "request": "x"}}
    )
    assert refused.status == "error" and "403" in str(refused.content)


def test_remote_tools_import_neither_torch_nor_the_pipeline() -> None:
    probe = (
        "import sys; from recagent.agent.tools import RecagentToolkit; RecagentToolkit.remote().get_tools(); "
        "print(sorted(m for m in ('torch', 'faiss', 'transformers', 'recagent.agent.recommender', "
        "'recagent.retrieval.index') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------- langchain-tests standard suites, remote tools


class _RemoteTool(ServiceTool):
    @pytest.fixture(autouse=True)
    def _server(self, served: str) -> None:
        type(self).service = RecagentClient(base_url=served + "/v1", api_key=ADMIN_KEY)


globals().update(standard_suites(_RemoteTool, user_id="10", prefix="Remote"))
