"""Start a real ``recagent serve`` process on 127.0.0.1 (the tiny random Llama as ranker) and stop it after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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
    port = free_port()
    environment = {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(cache_dir),
        "RECAGENT_LLM_MODEL": str(model_dir),
        "RECAGENT_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "recagent.ui.cli", "serve", "--index", str(index_dir), "--port", str(port)]
    log = (cache_dir / f"serve-{port}.log").open("w")
    proc = subprocess.Popen(cmd, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, (cache_dir / f"serve-{port}.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "recagent serve did not come up"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
