"""llama.cpp (xllamacpp) on the bundled GGUF: the embedded model's writer of justifications on a CPU."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from recagent.agent import LocalBackend
from recagent.agent.errors import LLMError
from recagent.agent.justifier import SENTENCE_END
from recagent.agent.llm.llamacpp import LlamaCppGenerator
from recagent.agent.llm.local_backend import bundled_gguf_path, materialise_q8_0_gguf
from recagent.agent.prompts import justification_conversation
from recagent.retrieval import ItemIndex

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_q8_0_gguf(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def generator(served_gguf: Path) -> LlamaCppGenerator:
    engine = LlamaCppGenerator(served_gguf, threads=1)  # the file LocalBackend serves
    engine.load()
    return engine


def test_the_served_gguf_is_the_bundled_one_with_its_q4_1_matrices_as_q8_0(served_gguf: Path) -> None:
    import gguf
    import numpy as np

    bundled, served = gguf.GGUFReader(str(bundled_gguf_path())), gguf.GGUFReader(str(served_gguf))
    fields = {name: f.contents() for name, f in bundled.fields.items() if not name.startswith("GGUF.")}
    assert {name: f.contents() for name, f in served.fields.items() if not name.startswith("GGUF.")} == fields
    assert [t.name for t in served.tensors] == [t.name for t in bundled.tensors]
    q4_1, q8_0 = gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0
    requantised = 0
    for old, new in zip(bundled.tensors, served.tensors, strict=True):
        if old.tensor_type != q4_1:
            assert new.tensor_type == old.tensor_type and np.array_equal(new.data, old.data)
            continue
        assert new.tensor_type == q8_0
        requantised += 1
        before, after = gguf.quants.dequantize(old.data, q4_1), gguf.quants.dequantize(new.data, q8_0)
        assert after.shape == before.shape
        # 8 bits hold the 16 levels of each 4-bit block almost exactly: the same weights, to under 1%.
        assert np.sqrt(np.mean((after - before) ** 2)) < 0.01 * np.std(before), old.name
    assert requantised == 210  # every attention and feed-forward matrix of the 30 blocks
    stamp = served_gguf.stat().st_mtime_ns
    assert materialise_q8_0_gguf(served_gguf.parent.parent) == served_gguf  # written once
    assert served_gguf.stat().st_mtime_ns == stamp


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
    # Star Wars, Toy Story, Fargo, Titanic, Scream, Heat: more than the engine's slots, so one waits for a slot.
    items = [ml100k_index.catalog[i] for i in ("50", "1", "100", "313", "288", "6")]
    assert len(items) > generator.parallel
    conversations = [justification_conversation(item, ["you like well-made films"], None) for item in items]
    together = generator.generate(conversations, 24, SENTENCE_END)
    alone = [generator.generate([conversation], 24, SENTENCE_END)[0] for conversation in conversations]
    # Batched numerics differ a little from a lone pass, so greedy answers may part after a few words; each
    # answer must still be most like the one its own conversation gets alone.

    def words(text: str) -> set[str]:
        return set(text.lower().replace(",", " ").replace(".", " ").split())

    for i, answer in enumerate(together):
        overlap = [len(words(answer) & words(a)) / len(words(answer) | words(a)) for a in alone]
        assert max(range(len(alone)), key=overlap.__getitem__) == i, (answer, alone)
