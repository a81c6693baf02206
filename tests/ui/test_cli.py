from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import Catalog, Item, ItemIndex
from recagent.ui.cli import main

RECAGENT = [sys.executable, "-m", "recagent.ui.cli"]


def _env(cache_dir: Path, model: str) -> dict[str, str]:
    return {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(cache_dir),
        "RECAGENT_LLM_MODEL": model,
        "HF_HUB_OFFLINE": "1",
        # A first start trains SASRec for the served index; two epochs of one model keep the test short.
        "RECAGENT_SASREC__EPOCHS": "2",
        "RECAGENT_SASREC__MEMBERS": "1",
    }


def test_help_is_instant() -> None:
    start = time.perf_counter()
    out = subprocess.run(RECAGENT + ["--help"], capture_output=True, text=True, check=True)
    assert time.perf_counter() - start < 5
    assert "recommend" in out.stdout and "index" in out.stdout and "run" in out.stdout


def test_recommend_json_acceptance(tmp_path: Path, tiny_model_dir: Path, ml100k) -> None:
    proc = subprocess.run(
        RECAGENT + ["recommend", "--dataset", "ml-100k", "--user", "1", "-k", "5", "--json"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, str(tiny_model_dir)),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    recs = result["recommendations"]
    rated = {e.item_id for e in ml100k.history("1")}
    assert len(recs) == 5 and len({r["item"]["id"] for r in recs}) == 5
    for rec in recs:
        assert rec["item"]["id"] in ml100k.catalog and rec["item"]["id"] not in rated
        assert rec["justification"]["text"] and rec["justification"]["source"] in ("generated", "template")


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unknown_user_is_one_clear_line(
    capsys, monkeypatch, cache_dir: Path, ml100k_index: ItemIndex
) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(cache_dir))
    folder = cache_dir / "ml100k-index"
    ml100k_index.save(folder)
    line = _error_line(capsys, ["recommend", "--index", str(folder), "--user", "no-such-user", "--no-llm"])
    assert line == "recagent: error: unknown user 'no-such-user'"


def test_catalogue_with_missing_column(capsys, tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text("id,price\n1,10\n")
    line = _error_line(capsys, ["index", "build", "--dataset", str(path)])
    assert "missing column 'title'" in line and str(path) in line


def test_index_from_another_encoder(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    path = tmp_path / "shop.csv"
    path.write_text("id,title\n1,Red shoe\n2,Blue hat\n")
    catalog = Catalog([Item(id="1", title="Red shoe"), Item(id="2", title="Blue hat")])
    ItemIndex(catalog, np.eye(2, 8, dtype=np.float32), encoder="some-other-encoder").save(tmp_path / "idx")
    line = _error_line(
        capsys,
        ["recommend", "--dataset", str(path), "--index", str(tmp_path / "idx"), "--user", "u", "--no-llm"],
    )
    assert "built with encoder 'some-other-encoder'" in line


def test_custom_catalogue_end_to_end(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    items = tmp_path / "books.jsonl"
    items.write_text(
        "\n".join(
            json.dumps({"id": f"b{i}", "title": t, "genres": g})
            for i, (t, g) in enumerate(
                [
                    ("Dune", "SciFi"),
                    ("Foundation", "SciFi"),
                    ("Emma", "Romance"),
                    ("Persuasion", "Romance"),
                    ("Hyperion", "SciFi"),
                ]
            )
        )
    )
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,rating,timestamp\nann,b0,5,1\nann,b1,5,2\nann,b2,1,3\n")
    assert main(["index", "build", "--dataset", str(items)]) == 0
    assert "index of 5 items" in capsys.readouterr().out
    assert (
        main(
            [
                "recommend",
                "--dataset",
                str(items),
                "--events",
                str(events),
                "--user",
                "ann",
                "-k",
                "2",
                "--no-llm",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    picks = [r["item"]["id"] for r in result["recommendations"]]
    assert len(picks) == 2 and not {"b0", "b1", "b2"} & set(picks)
    assert "b4" in picks  # the unseen science-fiction book, like the two she loved


def test_serve_help_documents_the_api() -> None:
    out = subprocess.run(RECAGENT + ["serve", "--help"], capture_output=True, text=True, check=True)
    assert (
        "/v1/chat/completions" in out.stdout and "RECAGENT_API_KEYS" in out.stdout and "--port" in out.stdout
    )
