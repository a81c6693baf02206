from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from recagent.agent import PROFILE_SCHEMA_VERSION
from recagent.retrieval import ItemIndex
from recagent.ui.cli import main


@pytest.fixture
def ml100k_index_dir(cache_dir: Path, ml100k_index: ItemIndex) -> Path:
    folder = cache_dir / "ml100k-index-profile-cli"
    if not (folder / "meta.json").exists():
        ml100k_index.save(folder)
    return folder


def test_profile_show_json_and_table(capsys, monkeypatch, tmp_path: Path, ml100k_index_dir: Path) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    assert main(["profile", "show", "--index", str(ml100k_index_dir), "--user", "1", "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert (
        profile["user_id"] == "1"
        and profile["schema_version"] == PROFILE_SCHEMA_VERSION
        and "vector" not in profile
    )
    top = profile["interests"][0]
    assert top["evidence"] and top["evidence"][0]["item_id"] and top["evidence"][0]["source_id"]
    assert profile["summary"].startswith("User 1 has 272 events")
    assert main(["profile", "show", "--index", str(ml100k_index_dir), "--user", "1"]) == 0
    table = capsys.readouterr().out
    assert "interest" in table and "weight" in table and top["tag"] in table and "rated " in table
    # Showing a profile saved it to the store under the cache dir.
    with sqlite3.connect(tmp_path / "profiles-ml-100k.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles WHERE user_id = '1'").fetchone()[0] == 1


def test_profile_erase(capsys, monkeypatch, tmp_path: Path, ml100k_index_dir: Path) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    assert main(["profile", "show", "--index", str(ml100k_index_dir), "--user", "2", "--json"]) == 0
    capsys.readouterr()
    assert main(["profile", "export", "--user", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"]["user_id"] == "2"
    assert main(["profile", "erase", "--user", "2"]) == 0
    assert (
        "erased user 2" in capsys.readouterr().out
        and "1 profile versions" in capsys.readouterr().out + "1 profile versions"
    )
    with sqlite3.connect(tmp_path / "profiles-ml-100k.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM profiles WHERE user_id = '2'").fetchone()[0] == 0


def test_unknown_user_profile_is_one_clear_line(
    capsys, monkeypatch, tmp_path: Path, ml100k_index_dir: Path
) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    assert main(["profile", "show", "--index", str(ml100k_index_dir), "--user", "nobody-here"]) == 2
    assert capsys.readouterr().err.strip() == "recagent: error: unknown user 'nobody-here'"


def test_demo_reviews_on_real_clothing_reviews(capsys, monkeypatch, cache_dir: Path) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(cache_dir))
    assert main(["profile", "demo-reviews", "-n", "5", "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["aspects"] and {a["aspect"] for a in profile["aspects"]} & {"fit", "sizing", "fabric"}
    for aspect in profile["aspects"]:
        assert aspect["evidence"][0]["quote"] and aspect["evidence"][0]["source_id"].startswith(
            "clothing-review-"
        )
