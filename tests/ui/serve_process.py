"""Start a real ``recagent serve`` process on 127.0.0.1 (the tiny random Llama as ranker) and stop it after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def recagent_serve(
    index_dir: Path, cache_dir: Path, model_dir: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``python -m recagent.ui.cli serve --index index_dir`` as a user starts it; yields the base URL."""
    with serve_command(
        ["--index", str(index_dir)], cache_dir, {"RECAGENT_LLM_MODEL": str(model_dir), **(env or {})}
    ) as url:
        yield url


@contextmanager
def serve_command(args: Sequence[str], cache_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``python -m recagent.ui.cli serve ARGS`` on a free loopback port, one thread, the cache in ``cache_dir``
    (its log there too); yields the base URL once /health answers, stops the server after."""
    port = free_port()
    cache_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(cache_dir),
        "RECAGENT_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "recagent.ui.cli",
        "serve",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log_path = cache_dir / f"serve-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "recagent serve did not come up: " + log_path.read_text()
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
