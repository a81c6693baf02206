"""Agent mode: the conversation runs as a LangChain tool-calling agent over recagent's own tools.

Which mode answers a chat is decided once per process by :func:`chat_mode`:

* ``pipeline`` (default; always with the embedded model): the orchestrated pipeline. The last user
  message is the request, earlier ones the history; one ``Recommender.recommend`` call answers.
* ``agent``: a chat model that can call tools (e.g. a larger model behind vLLM, started with
  ``--enable-auto-tool-choice``) reads the conversation and decides when to call ``recommend`` and
  ``user_profile``. The tools run the same pipeline, so every item shown still comes from it.

``RECAGENT_CHAT_MODE=auto`` (default) picks ``agent`` when ``RECAGENT_LLM_BASE_URL`` names an
OpenAI-compatible server and ``pipeline`` otherwise; ``pipeline``/``agent`` force a mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal

from pydantic import BaseModel, Field

from .justifier import _TITLE_WITH_YEAR, _longest_title_suffix
from .llm import ChatMessage
from .recommender import Recommender
from .render import content_text, summarise_result
from .schemas import RecommendationResult
from .settings import Settings
from .tools import CallerBinding, recagent_tools

ChatMode = Literal["pipeline", "agent"]

AGENT_SYSTEM_PROMPT = (
    "You are recagent, a recommender assistant. To suggest items, always call the `recommend` tool and "
    "present only the items it returned, with their justifications; never invent items. Use "
    "`user_profile` to discuss the user's taste. {user_line}Keep answers short."
)

NO_TOOL_ANSWER = "Tell me what you are in the mood for and I will look through the catalogue."


def chat_mode(settings: Settings | None = None) -> ChatMode:
    settings = settings or Settings()
    if settings.chat_mode == "auto":
        return "agent" if settings.llm_base_url else "pipeline"
    return settings.chat_mode


def make_agent_model(settings: Settings | None = None) -> Any:
    """A ``ChatOpenAI`` pointed at the configured OpenAI-compatible server."""
    from langchain_openai import ChatOpenAI

    settings = settings or Settings()
    if not settings.llm_base_url:
        raise ValueError(
            "agent mode needs RECAGENT_LLM_BASE_URL (an OpenAI-compatible server with tool calling)"
        )
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else "EMPTY",  # type: ignore[arg-type]
        model=settings.agent_model or settings.llm_model,
        temperature=0,
    )


class AgentTurn(BaseModel):
    """The agent's answer to one conversation turn."""

    text: str
    results: list[RecommendationResult] = Field(
        default_factory=list, description="Every `recommend` result the agent obtained, in call order."
    )
    tool_calls: int = 0
    replaced_text: bool = Field(
        default=False,
        description="True when the model's prose named items it was not given and was replaced.",
    )


def _named_items(text: str, recommender: Recommender) -> set[str]:
    """Ids of the catalogue items a text names as 'Title (year)'."""
    catalog = recommender.index.catalog
    named = (_longest_title_suffix(m.group(1), m.group(2), catalog) for m in _TITLE_WITH_YEAR.finditer(text))
    return {item.id for item in named if item is not None}


def _title_spans(text: str) -> set[str]:
    return {match.group(0).strip() for match in _TITLE_WITH_YEAR.finditer(text)}


def _names_unknown(
    text: str, allowed_ids: set[str], recommender: Recommender, given_spans: AbstractSet[str] = frozenset()
) -> bool:
    """Whether the text names a 'Title (year)' that is not in the catalogue or not among the allowed items.

    A span copied verbatim from a tool's answer is allowed even when the title pattern cannot resolve it
    (titles with inner punctuation such as "Mr. Holland's Opus (1995)").
    """
    catalog = recommender.index.catalog
    for match in _TITLE_WITH_YEAR.finditer(text):
        if match.group(0).strip() in given_spans:
            continue
        named = _longest_title_suffix(match.group(1), match.group(2), catalog)
        if named is None or named.id not in allowed_ids:
            return True
    return False


class ToolCallingChat:
    """Runs a conversation through ``langchain.agents.create_agent`` with recagent's tools."""

    def __init__(self, recommender: Recommender, model: Any, max_steps: int = 8) -> None:
        self.recommender = recommender
        self.model = model
        self.max_steps = max_steps

    def _agent(self, user_id: str | None, session_id: str | None, history: list[str]) -> Any:
        from langchain.agents import create_agent

        # The caller is the authenticated request's user, bound into the tools: their schemas have no
        # user_id, so the model (and any text it reads) cannot choose whose data a tool returns.
        user_line = (
            "The tools act for the signed-in user automatically. "
            if user_id
            else "The user is anonymous and has no profile. "
        )
        return create_agent(
            self.model,
            recagent_tools(
                self.recommender,
                session_id=session_id,
                history=history,
                caller=CallerBinding(user_id=user_id),
            ),
            system_prompt=AGENT_SYSTEM_PROMPT.format(user_line=user_line),
        )

    def _inputs(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        # Only user and assistant turns go in: client-supplied system prompts do not steer recagent.
        # They are redacted first: the agent's model is an LLM like any other and sees no raw personal data.
        redact = self.recommender.redactor
        turns = [
            {"role": m["role"], "content": redact(m["content"])}
            for m in messages
            if m["role"] in ("user", "assistant")
        ]
        return {"messages": turns}

    def _turn(self, state: dict[str, Any]) -> AgentTurn:
        from langchain_core.messages import AIMessage, ToolMessage

        results: list[RecommendationResult] = []
        given: set[str] = set()  # every item the tools told the model about
        given_spans: set[str] = set()
        calls = 0
        text = ""
        for message in state.get("messages", []):
            if isinstance(message, ToolMessage):
                calls += 1
                given |= _named_items(content_text(message.content), self.recommender)
                given_spans |= _title_spans(content_text(message.content))
                if message.name == "recommend" and isinstance(message.artifact, dict):
                    results.append(RecommendationResult.model_validate(message.artifact))
            elif isinstance(message, AIMessage):
                text = content_text(message.content)
        given |= {r.item.id for result in results for r in result.recommendations}
        replaced = False
        if _names_unknown(text, given, self.recommender, given_spans):
            # The model named an item no tool gave it: show the pipeline's own words instead.
            replaced = True
            text = summarise_result(results[-1]) if results else NO_TOOL_ANSWER
        if not text.strip():
            text = summarise_result(results[-1]) if results else "How can I help you find something?"
        return AgentTurn(
            text=re.sub(r"\n{3,}", "\n\n", text).strip(),
            results=results,
            tool_calls=calls,
            replaced_text=replaced,
        )

    def run(
        self, messages: Sequence[ChatMessage], user_id: str | None = None, session_id: str | None = None
    ) -> AgentTurn:
        history = [m["content"] for m in messages if m["role"] == "user"][:-1]
        agent = self._agent(user_id, session_id, history)
        state = agent.invoke(self._inputs(messages), {"recursion_limit": self.max_steps})
        return self._turn(state)

    async def arun(
        self, messages: Sequence[ChatMessage], user_id: str | None = None, session_id: str | None = None
    ) -> AgentTurn:
        history = [m["content"] for m in messages if m["role"] == "user"][:-1]
        agent = self._agent(user_id, session_id, history)
        state = await agent.ainvoke(self._inputs(messages), {"recursion_limit": self.max_steps})
        return self._turn(state)
