"""Query by photo through the HTTP API: OpenAI ``image_url`` content parts (data URLs) sent with the official
``openai`` client to a real ``recagent serve`` process on 127.0.0.1, over a small photo catalogue."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import ImageOps

from tests.retrieval.photos import PHOTO_SHOP, data_url, photo, png_bytes, write_photo_shop
from tests.ui.serve_process import serve_command

KEY = "photo-key"
MAX_IMAGE_BYTES = 200_000  # the catalogue's JPEGs are under it (<= 73 KB), a PNG photo is not


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("photo-api")
    catalog, events = write_photo_shop(folder)
    env = {
        "RECAGENT_LLM_MODEL": "none",  # retrieval only: the photo decides, not a ranker
        "RECAGENT_API_KEYS": KEY,
        "RECAGENT_IMAGE_MAX_BYTES": str(MAX_IMAGE_BYTES),
    }
    with serve_command(["--dataset", str(catalog), "--events", str(events)], folder / "cache", env) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=served + "/v1", api_key=KEY, max_retries=0, timeout=120)


def _photo_message(url: str, text: str | None = None) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}]
    if text is not None:
        parts.insert(0, {"type": "text", "text": text})
    return [{"role": "user", "content": parts}]


def _top(answer: Any) -> str:
    recs = answer.model_extra["recommendations"]["recommendations"]
    return str(recs[0]["item"]["id"])


def test_a_photo_finds_its_item(client: openai.OpenAI) -> None:
    for pos in (1, 2, 5):  # coffee, rocket, coins — mirrored, so not the catalogue's bytes
        url = data_url(ImageOps.mirror(photo(PHOTO_SHOP[pos]).resize((200, 150))))
        answer = client.chat.completions.create(
            model="recagent",
            messages=_photo_message(url, "more like this"),
            extra_body={"recagent": {"k": 3}},
        )
        assert _top(answer) == f"p{pos}"
        assert answer.choices[0].message.content  # the prose answer names the picks
    # A photo alone, no words, and streamed: the first chunk's ranked picks put it first too.
    stream = client.chat.completions.create(
        model="recagent", messages=_photo_message(data_url(photo("rocket").resize((160, 160)))), stream=True
    )
    chunks = list(stream)
    ranked = next(c.model_extra["recagent"] for c in chunks if (c.model_extra or {}).get("recagent"))
    assert ranked["event"] == "ranked" and ranked["result"]["recommendations"][0]["item"]["id"] == "p2"


def test_a_users_image_taste_and_a_photo(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="recagent", user="cat-person", messages=[{"role": "user", "content": "show me something"}]
    )
    assert answer.model_extra["recommendations"]["recommendations"]
    cat = data_url(photo("chelsea").crop((80, 40, 280, 240)))
    answer = client.chat.completions.create(model="recagent", user="cat-person", messages=_photo_message(cat))
    assert _top(answer) == "closeup"  # p0, the cat itself, was seen: the close-up is the unseen look-alike


def _unprocessable(call: Any) -> dict[str, Any]:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        call()
    body = caught.value.body
    assert isinstance(body, dict)
    return body


def test_bad_photos_are_422(client: openai.OpenAI) -> None:
    def send(url: str) -> Any:
        return lambda: client.chat.completions.create(
            model="recagent", messages=_photo_message(url, "like this")
        )

    remote = _unprocessable(send("https://example.com/cat.jpg"))
    assert "remote image URLs are refused" in remote["message"]
    broken = _unprocessable(send("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"))
    assert broken["code"] == "invalid_data" and "image" in broken["message"]
    not_base64 = _unprocessable(send("data:image/jpeg;base64,%%%%"))
    assert "base64" in not_base64["message"]
    text_file = _unprocessable(send("data:image/jpeg;base64,dGhpcyBpcyBub3QgYSBwaG90bw=="))
    assert "not a readable image" in text_file["message"]
    big = "data:image/png;base64," + base64.b64encode(png_bytes(photo("astronaut"))).decode()  # ~425 KB
    assert MAX_IMAGE_BYTES < len(big) * 3 // 4 < 1_000_000  # over the image limit, under the body limit
    too_large = _unprocessable(send(big))
    assert "larger than" in too_large["message"] or "more than" in too_large["message"]


def test_cli_recommend_by_photo(tmp_path: Path) -> None:
    catalog, events = write_photo_shop(tmp_path)
    query = tmp_path / "my-photo.jpg"
    ImageOps.mirror(photo("coins")).save(query, format="JPEG")
    env = {**os.environ, "RECAGENT_CACHE_DIR": str(tmp_path / "cache"), "RECAGENT_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "recagent.ui.cli",
        "recommend",
        "--dataset",
        str(catalog),
        "--events",
        str(events),
    ]
    args = ["--user", "someone-new", "--image", str(query), "-k", "2", "--no-llm", "--no-justify", "--json"]
    out = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["recommendations"][0]["item"]["id"] == "p5"
