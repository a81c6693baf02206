"""llama.cpp (xllamacpp) on the bundled GGUF: the embedded model's writer of justifications on a CPU."""

from __future__ import annotations

import httpx
import pytest

from recagent.agent import LocalBackend
from recagent.agent.errors import LLMError
from recagent.agent.justifier import SENTENCE_END
from recagent.agent.llm.llamacpp import LlamaCppGenerator
from recagent.agent.llm.local_backend import bundled_gguf_path
from recagent.agent.prompts import justification_conversation
from recagent.retrieval import ItemIndex

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generator() -> LlamaCppGenerator:
    engine = LlamaCppGenerator(bundled_gguf_path(), threads=1)
    engine.load()
    return engine


def test_a_justification_is_written_as_one_sentence(
    generator: LlamaCppGenerator, ml100k_index: ItemIndex
) -> None:
    star_wars = ml100k_index.catalog["50"]
    conversation = justification_conversation(star_wars, ["you rated Return of the Jedi (1983) 5/5"], None)
    [sentence] = generator.generate([conversation], 40, SENTENCE_END)
    assert len(sentence) > 20 and "Star Wars" in sentence


def test_generation_stops_at_the_first_full_stop_and_keeps_it(generator: LlamaCppGenerator) -> None:
    conversation = [{"role": "user", "content": "Write three short sentences about films, one per line."}]
    [free] = generator.generate([conversation], 60)
    [stopped] = generator.generate([conversation], 60, SENTENCE_END)
    # Greedy: the stopped answer is the free one's first sentence, with its full stop put back.
    assert free.count(".") >= 2, free
    assert stopped and free.startswith(stopped) and stopped.endswith(".")
    assert stopped.count(". ") == 0 and len(stopped) < len(free)


def test_its_listener_is_loopback_only_and_locked(generator: LlamaCppGenerator) -> None:
    address = str(generator._server.listening_address)
    assert address.startswith("http://127.0.0.1:")
    response = httpx.post(
        f"{address}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=30,
    )
    assert response.status_code == 401


def test_the_backend_writes_with_llamacpp_only_where_it_serves_the_same_weights() -> None:
    assert LocalBackend("smollm2").uses_llamacpp()
    assert not LocalBackend("smollm2", generator="transformers").uses_llamacpp()
    assert not LocalBackend("smollm2", device="cuda").uses_llamacpp()
    assert not LocalBackend("some/other-model").uses_llamacpp()
    # A merged ranking adapter would write from other weights than the GGUF's.
    merged = LocalBackend("smollm2", adapter="adapter-dir", generate_with_adapter=True)
    assert not merged.uses_llamacpp()
    with pytest.raises(LLMError, match="bundled GGUF"):
        LocalBackend("some/other-model", generator="llamacpp").uses_llamacpp()
    with pytest.raises(LLMError, match="unknown generator"):
        LocalBackend("smollm2", generator="onnx")


def test_several_conversations_decode_together_and_come_back_in_order(
    generator: LlamaCppGenerator, ml100k_index: ItemIndex
) -> None:
    # Star Wars, Toy Story, Fargo, Titanic, Scream: more than the engine's slots, so one waits for a free slot.
    items = [ml100k_index.catalog[i] for i in ("50", "1", "100", "313", "288")]
    assert len(items) > generator.parallel
    conversations = [justification_conversation(item, ["you like well-made films"], None) for item in items]
    sentences = generator.generate(conversations, 40, SENTENCE_END)
    assert len(sentences) == len(items)
    for item, sentence in zip(items, sentences, strict=True):
        # Each answer is about its own item: the order of the conversations is kept.
        assert item.title.split(" (")[0].split(",")[0].lower() in sentence.lower(), (item.title, sentence)
