"""The Gradio chat app: pick a user, ask for something, see ranked picks with justifications."""

from __future__ import annotations

import os
from typing import Any

from recagent.agent import RecommendationRequest, Recommender, UnknownUserError

from .render import result_markdown

NEW_USER = "(new user)"


def create_app(recommender: Recommender, max_users: int = 200) -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    users = [NEW_USER, *recommender.users()[:max_users]]

    def respond(
        message: str, history: list[dict[str, Any]], user: str, k: float
    ) -> tuple[list[dict[str, Any]], str]:
        history = list(history or [])
        message = (message or "").strip()
        user_id = None if user in (None, "", NEW_USER) else user
        history.append({"role": "user", "content": message or "(recommend me something)"})
        try:
            result = recommender.recommend(
                RecommendationRequest(user_id=user_id, query=message or None, k=int(k))
            )
            reply = result_markdown(result)
        except UnknownUserError as exc:
            reply = f"{exc}"
        history.append({"role": "assistant", "content": reply})
        return history, ""

    with gr.Blocks(title="recagent", analytics_enabled=False) as demo:
        gr.Markdown(
            "# recagent\nPick a MovieLens user (or start as a new one), then say what you are in the mood for."
        )
        with gr.Row():
            user = gr.Dropdown(
                choices=users, value=users[1] if len(users) > 1 else NEW_USER, label="User", elem_id="user"
            )
            k = gr.Slider(1, 10, value=5, step=1, label="How many picks", elem_id="k")
        chat = gr.Chatbot(label="Chat", elem_id="chat", height=520)
        box = gr.Textbox(placeholder="e.g. something funny from the 90s", label="Message", elem_id="message")
        send = gr.Button("Recommend", variant="primary", elem_id="send")
        send.click(respond, [box, chat, user, k], [chat, box], api_name="respond")
        box.submit(respond, [box, chat, user, k], [chat, box], api_visibility="private")
    return demo


def launch(recommender: Recommender, host: str = "127.0.0.1", port: int = 7860) -> None:
    demo = create_app(recommender)
    print(f"recagent app on http://{host}:{port}", flush=True)
    demo.launch(server_name=host, server_port=port, share=False, show_error=True)
