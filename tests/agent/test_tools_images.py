"""The recommend tool takes a photo: a local image path (inside its image_root when set) or a data URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageOps

from recagent.agent import Recommender, Settings, build_recommender
from recagent.agent.tools import RecommendTool
from tests.retrieval.photos import jpeg_bytes, photo, write_photo_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = tmp_path_factory.mktemp("tool-shop")
    catalog, events = write_photo_shop(folder)
    settings = Settings(cache_dir=folder / "cache", llm_model="none")
    return build_recommender(catalog, settings, events=events, backend=None, store=None)


def test_the_tool_finds_items_like_a_photo_file(shop: Recommender, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "my-espresso.jpg").write_bytes(jpeg_bytes(ImageOps.mirror(photo("coffee"))))
    tool = RecommendTool(recommender=shop, user_id=None, image_root=uploads)
    assert "image" in tool.tool_call_schema.model_json_schema()["properties"]
    result = tool.recommend(image="my-espresso.jpg", k=2)
    assert result.recommendations[0].item.id == "p1"
    # Through LangChain: the model reads a summary naming the pick.
    assert "Product 1" in tool.invoke({"image": str(uploads / "my-espresso.jpg"), "k": 1})


def test_the_tool_refuses_paths_outside_its_root_and_non_images(shop: Recommender, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "notes.jpg").write_text("not a photo", encoding="utf-8")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg_bytes(photo("rocket")))
    tool = RecommendTool(recommender=shop, user_id=None, image_root=uploads)
    # handle_tool_error: the model gets the reason as the tool's answer, and nothing is recommended.
    assert "refused" in tool.invoke({"image": "../secret.jpg"})
    assert "not a readable image" in tool.invoke({"image": "notes.jpg"})
    assert "not found" in tool.invoke({"image": "missing.png"})
    assert "refused" in tool.invoke({"image": "https://example.com/cat.jpg"})
    assert "refused" in tool.invoke({"image": secret.as_uri()})  # file:// is a path like any other
