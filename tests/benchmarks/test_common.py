"""The benchmark helpers compute what they claim: percentiles, tables, reports, recall, vector generation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_index import numpy_topk, profile_queries, realish_vectors, recall_at_k
from benchmarks.bench_ranking import parse_listwise
from benchmarks.common import Report, Table, fmt, measure, percentile, ratio


def test_percentile_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.exponential(size=37).tolist()
    for q in (0, 5, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_measure_counts_warmup_and_repeats() -> None:
    calls: list[int] = []
    stats = measure(lambda: calls.append(1), repeat=7, warmup=3)
    assert len(calls) == 10
    assert stats.n == 7 and len(stats.cpu_ms) == 7
    assert all(s >= 0 for s in stats.samples_ms)
    assert stats.p50 <= stats.p95
    with pytest.raises(ValueError):
        measure(lambda: None, repeat=0)


def test_ratio_handles_missing_values() -> None:
    assert ratio(6.0, 2.0) == 3.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(float("nan"), 1.0))


def test_table_markdown_and_text() -> None:
    table = Table("T", ["name", "ms"])
    table.add("a|b", 1234.5)
    table.add("c", float("nan"))
    table.notes.append("a note")
    md = table.markdown()
    assert "| name | ms |" in md and "| a\\|b | 1,234 |" in md and "| c | – |" in md and "- a note" in md
    assert table.column("ms")[0] == 1234.5
    assert "a|b" in table.text()
    with pytest.raises(ValueError):
        table.add("only one cell")
    assert fmt(0.5) == "0.5" and fmt(12.34) == "12.3" and fmt(True) == "yes" and fmt(0.001234) == "0.0012"


def test_report_writes_markdown_and_png(tmp_path: Path) -> None:
    report = Report("demo", "Demo", quick=True, results_dir=tmp_path)
    table = report.table("numbers", ["x", "y"])
    table.add("one", 1.0)
    table.add("two", 2.0)
    png = report.plot_bars("bars", ["one", "two"], {"y": table.column("y")}, "y", "numbers", log=True)
    md_path = report.write()
    assert md_path == tmp_path / "demo-quick.md"
    text = md_path.read_text(encoding="utf-8")
    assert "## Demo" in text and "| one | 1.00 |" in text and f"]({png.name})" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recall_at_k() -> None:
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(truth, truth) == 1.0
    assert recall_at_k(np.array([[1, 2, -1], [6, 9, 8]]), truth) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        recall_at_k(truth[:1], truth)


def test_realish_vectors_are_unit_and_keep_base_neighbourhoods() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=(50, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    vectors = realish_vectors(base, 500, chunk=128)
    assert vectors.shape == (500, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The first copy of each base row is the row itself (mixed with another row, not noised).
    assert (np.argmax(vectors[:50] @ base.T, axis=1) == np.arange(50)).mean() > 0.8
    # Each noisy copy stays closest to a few base rows, not spread uniformly: its source ranks near the top.
    sims = vectors[50:] @ base.T
    source = np.arange(50, 500) % 50
    rank_of_source = (sims > sims[np.arange(450), source][:, None]).sum(axis=1)
    assert np.median(rank_of_source) <= 1
    queries = profile_queries(base, 7)
    assert queries.shape == (7, 16) and np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)


def test_numpy_topk_is_exact() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(numpy_topk(vectors, queries, 10), expected)


def test_parse_listwise() -> None:
    assert parse_listwise("C > A > B > E > D", 20) == [2, 0, 1, 4, 3]
    assert parse_listwise("C > A > C > B > D", 20) is None  # a repeat
    assert parse_listwise("C > A > Z > B > D", 20) is None  # Z is not a candidate
    assert parse_listwise("C > A", 20) is None  # fewer than 5
    assert parse_listwise("I think the user would like a movie.", 20) is None
