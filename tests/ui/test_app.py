from __future__ import annotations

import socket

import pytest

from recagent.agent import LocalBackend, Recommender
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tiny_backend: LocalBackend):
    recommender = Recommender(ml100k_index, encoder, tiny_backend, histories=ml100k.by_user)
    demo = create_app(recommender)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_chat_answers_with_ranked_justified_items(app_url: str, ml100k: Dataset) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    history, box = client.predict("something funny from the 90s", [], "1", 3, api_name="/respond")
    assert box == ""
    reply = history[-1]
    assert reply["role"] == "assistant"
    text = reply["content"][0]["text"] if isinstance(reply["content"], list) else reply["content"]
    titles = [line.split(". ", 1)[1].split("**")[0] for line in text.splitlines() if line.startswith("**")]
    assert len(titles) == 3
    for title in titles:
        assert ml100k.catalog.find_title(title) is not None, title
    assert text.count("\n   ") == 3  # one justification line under each pick
