"""The vLLM command lines `recagent serve-llm` prints (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recagent.agent import LLMError
from recagent.agent.llm.vllm_serving import format_command, vllm_command
from recagent.ui.cli import main


@pytest.fixture()
def adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "ranker-lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 16, "peft_type": "LORA"}))
    return folder


def test_gpu_command_serves_the_adapter_by_name(adapter: Path) -> None:
    cmd = vllm_command("Qwen/Qwen2.5-7B-Instruct", adapter=adapter, tensor_parallel=2, data_parallel=4)
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    line = format_command(cmd)
    assert f"--enable-lora --lora-modules recagent-ranker={adapter}" in line
    assert "--max-lora-rank 16" in line
    assert "--tensor-parallel-size 2" in line and "--data-parallel-size 4" in line


def test_cpu_command_is_the_module_form(adapter: Path) -> None:
    cmd = vllm_command("/models/smol", adapter=adapter, variant="cpu", port=8123, python="/v/bin/python")
    assert cmd[:3] == ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    line = " ".join(cmd)
    for part in ["--dtype float32", "--enforce-eager", "--port 8123", "--served-model-name recagent-base"]:
        assert part in line
    assert "--lora-modules recagent-ranker=" in line


def test_not_an_adapter_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="adapter_config.json"):
        vllm_command("m", adapter=tmp_path)


def test_cli_serve_llm_prints_the_command(adapter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["serve-llm", "--variant", "gpu", "--model", "org/base", "--adapter", str(adapter), "--print-only"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("vllm serve org/base ")
    assert f"recagent-ranker={adapter}" in out
    assert "RECAGENT_LLM_BASE_URL=http://127.0.0.1:8000/v1 RECAGENT_LLM_SERVED_MODEL=recagent-ranker" in err


def test_cli_serve_llm_bad_adapter_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve-llm", "--variant", "gpu", "--model", "m", "--adapter", str(tmp_path), "--print-only"])
    assert code == 2
    assert "adapter_config.json" in capsys.readouterr().err
