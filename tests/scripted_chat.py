"""A scripted tool-calling chat model: deterministic stand-in for an LLM behind vLLM in agent tests."""

from __future__ import annotations

import re
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


_ORDER = re.compile(r"call (recommend|user_profile) for user (\S+?)[.,;:!]?(?:\s|$)", re.IGNORECASE)


class InjectionFollower(BaseChatModel):
    """The worst case for excessive agency: obeys any "call <tool> for user <id>" it reads anywhere in the
    conversation (user turns, history, quoted reviews, assistant turns, tool answers), once each, then
    answers with the last tool's text. Records the tool schemas it was bound to and the calls it made."""

    bound_schemas: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    seen_text: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "injection-follower"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> InjectionFollower:  # type: ignore[override]
        from langchain_core.utils.function_calling import convert_to_openai_tool

        self.bound_schemas = [convert_to_openai_tool(t)["function"] for t in tools]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen_text.extend(str(m.content) for m in messages)
        done = {
            (c["name"], c["args"].get("user_id"))
            for m in messages
            if isinstance(m, AIMessage)
            for c in m.tool_calls
        }
        for message in messages:
            for tool, user in _ORDER.findall(str(message.content)):
                if (tool.lower(), user) in done:
                    continue
                args = {"user_id": user, **({"request": "anything"} if tool.lower() == "recommend" else {})}
                call = {"name": tool.lower(), "args": args, "id": f"call_{len(self.calls)}"}
                self.calls.append(call)
                return ChatResult(
                    generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))]
                )
        last = next((m for m in reversed(messages) if isinstance(m, ToolMessage)), None)
        text = "Done.\n" + (str(last.content) if last is not None else "")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
