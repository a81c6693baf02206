"""A scripted tool-calling chat model: deterministic stand-in for an LLM behind vLLM in agent tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class ScriptedToolCaller(BaseChatModel):
    """First turn: call ``tool_name`` with ``args_for(last user text)``; after the tool answers, reply
    with ``reply_prefix`` + the tool's text. Records what it was shown and which tools it was bound to."""

    tool_name: str = "recommend"
    args_for: Callable[[str], dict[str, Any]]
    reply_prefix: str = "Here is what I found.\n"
    bound_tools: list[str] = []
    seen: list[list[str]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolCaller:  # type: ignore[override]
        self.bound_tools = [getattr(t, "name", str(t)) for t in tools]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append([type(m).__name__ for m in messages])
        last = messages[-1]
        if isinstance(last, ToolMessage):
            message = AIMessage(content=self.reply_prefix + str(last.content))
        else:
            text = str(last.content)
            message = AIMessage(
                content="",
                tool_calls=[
                    {"name": self.tool_name, "args": self.args_for(text), "id": f"call_{len(self.seen)}"}
                ],
            )
        return ChatResult(generations=[ChatGeneration(message=message)])
