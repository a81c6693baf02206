"""The Gradio app on a photo catalogue: a photo uploaded in the chat finds the items that look like it, and the
cards show the catalogue's pictures (relative paths start at the catalogue file), served by the app itself."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from PIL import ImageOps

from recagent.agent import Recommender, Settings, build_recommender
from recagent.ui.app import AppHandlers, card_html, create_app, image_dirs
from tests.retrieval.photos import jpeg_bytes, photo, write_photo_shop
from tests.ui.serve_process import free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = tmp_path_factory.mktemp("app-shop")
    catalog, events = write_photo_shop(folder)
    settings = Settings(cache_dir=folder / "cache", llm_model="none")
    return build_recommender(catalog, settings, events=events, backend=None, store=None)


def test_upload_a_photo_and_see_the_pictures(shop: Recommender, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    upload = tmp_path / "espresso.jpg"
    upload.write_bytes(jpeg_bytes(ImageOps.mirror(photo("coffee"))))
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("hello", encoding="utf-8")
    folders = image_dirs(shop)
    assert folders == [str((shop.index.catalog.root or Path()).resolve() / "img")]
    demo = create_app(shop, warm_start=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=folders)  # fmt: skip
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        history, _, picks, _ = client.predict(
            "", [], "(new user)", 3, 0, handle_file(str(upload)), api_name="/respond"
        )
        recs = picks["result"]["recommendations"]
        assert recs[0]["item"]["id"] == "p1" and "(more like this photo)" in str(history[-2]["content"])
        card = card_html(recs[0], shop.index.catalog.root)
        src = card.split("src='", 1)[1].split("'", 1)[0]
        served = httpx.get(f"http://127.0.0.1:{port}{src}", timeout=30)
        with pytest.raises(AppError):  # Gradio's image input refuses a non-image before the handler runs
            client.predict("", [], "(new user)", 3, 0, handle_file(str(not_a_photo)), api_name="/respond")
    finally:
        demo.close()
    assert (
        served.status_code == 200
        and served.content == (shop.index.catalog.root / "img" / "coffee.jpg").read_bytes()
    )
    # The handler itself (a file that changed under it, or one over the limits) answers in the chat.
    turns = list(AppHandlers(shop).respond("", [], "(new user)", 3, "", None, 0.0, str(not_a_photo)))
    history, _, picks, _ = turns[-1]
    assert "cannot be used" in str(history[-1]["content"]) and picks["result"] is None


def test_a_person_uploads_a_photo_in_a_real_browser(shop: Recommender, tmp_path: Path) -> None:
    """Headless Chromium: the cards of the opening picks show their pictures; a photo put into the Photo box
    and sent brings the item that looks like it to the first card (screenshot in test-artifacts/)."""
    from tests.ui.cdp import Browser

    upload = tmp_path / "my-rocket.jpg"  # the page opens as cat-person, who has seen the cat and the coffee
    upload.write_bytes(jpeg_bytes(ImageOps.mirror(photo("rocket"))))
    demo = create_app(shop, warm_start=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=image_dirs(shop), footer_links=[])  # fmt: skip
    browser = Browser(tmp_path / "chromium")
    try:
        page = browser.open(f"http://127.0.0.1:{port}/")
        page.wait_for("document.querySelectorAll('.rec-card').length >= 3", timeout=180)
        loaded = "Array.from(document.querySelectorAll('img.rec-image')).filter(i => i.complete && i.naturalWidth > 0).length"
        assert page.wait_for(f"{loaded} >= 3", timeout=60)
        root = page.call("DOM.getDocument", depth=-1, pierce=True)["root"]["nodeId"]
        node = page.call("DOM.querySelector", nodeId=root, selector="#photo input[type=file]")["nodeId"]
        page.call("DOM.setFileInputFiles", files=[str(upload)], nodeId=node)
        page.wait_for("document.querySelector('#photo img') !== null", timeout=60)
        page.evaluate("document.querySelector('#send').click()")
        page.wait_for(
            "document.querySelector('#chat').innerText.includes('(more like this photo)')", timeout=120
        )
        first = "(document.querySelector('#card-0') || {innerText: ''}).innerText"
        try:
            page.wait_for(f"{first}.includes('1. Product 2')", 120)
        except AssertionError:
            raise AssertionError(f"first card: {page.evaluate(first)!r}") from None
        assert page.wait_for(f"{loaded} >= 3", timeout=60)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = page.screenshot(ARTIFACTS / "gradio-photo.png")
    finally:
        browser.close()
        demo.close()
    from PIL import Image

    lo, hi = Image.open(shot).convert("L").getextrema()
    assert hi - lo > 100  # not blank
