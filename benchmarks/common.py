"""The one place benchmarks time things, print tables and write markdown + PNG results.

Every benchmark measures a baseline in the same process and reports ratios against it, because the CPU is
shared and absolute numbers drift between runs; ratios taken seconds apart are far more stable.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Stats:
    """Summary of repeated timings, in milliseconds."""

    samples_ms: tuple[float, ...]
    # Process CPU time per run: on a shared machine this tracks what an idle core would take, for 1 thread.
    cpu_ms: tuple[float, ...] = ()

    @property
    def cpu_p50(self) -> float:
        return percentile(self.cpu_ms, 50)

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def mean(self) -> float:
        return sum(self.samples_ms) / len(self.samples_ms) if self.samples_ms else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> Stats:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(repeat):
        cpu_start, start = time.process_time(), time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return Stats(tuple(samples), tuple(cpu))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, milliseconds) of one call."""
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def ratio(value: float, baseline: float) -> float:
    """value / baseline, NaN when either is missing or the baseline is zero."""
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline == 0:
        return math.nan
    return value / baseline


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.01:
            return f"{value:.3f}".rstrip("0").rstrip(".") if magnitude < 1 else f"{value:.2f}"
        return f"{value:.2g}"
    return str(value)


@dataclass
class Table:
    """A titled table; rows are lists of cells in column order."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: expected {len(self.columns)} cells, got {len(cells)}")
        self.rows.append(list(cells))

    def column(self, name: str) -> list[Any]:
        pos = self.columns.index(name)
        return [row[pos] for row in self.rows]

    def markdown(self) -> str:
        def cell(value: Any) -> str:
            return fmt(value).replace("|", "\\|")

        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "| " + " | ".join("---" for _ in self.columns) + " |",
        ]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes] if self.notes else []
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        cells = [self.columns] + [[fmt(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        line = "  ".join("-" * w for w in widths)
        out = [self.title, line]
        for pos, row in enumerate(cells):
            out.append("  ".join(c.rjust(w) if pos else c.ljust(w) for c, w in zip(row, widths, strict=True)))
            if pos == 0:
                out.append(line)
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def environment_note(threads: int | None = None) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    parts = [
        f"{platform.processor() or platform.machine()}",
        f"{os.cpu_count()} cores",
        f"load avg {load:.1f} at start",
        f"python {platform.python_version()}",
    ]
    if threads is not None:
        parts.append(f"{threads} threads")
    return ", ".join(parts)


@dataclass
class Report:
    """One benchmark's output: tables, then a markdown file and PNG plots under ``results_dir``."""

    name: str
    title: str
    quick: bool = False
    results_dir: Path = RESULTS_DIR
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, title: str, columns: list[str]) -> Table:
        table = Table(title, columns)
        self.tables.append(table)
        return table

    def plot_bars(
        self,
        stem: str,
        labels: Sequence[str],
        series: dict[str, Sequence[float]],
        ylabel: str,
        title: str,
        log: bool = False,
    ) -> Path:
        """Grouped bar chart: one group per label, one bar per series."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) * max(1, len(series))), 4.0))
        width = 0.8 / max(1, len(series))
        for pos, (name, values) in enumerate(series.items()):
            xs = [i + (pos - (len(series) - 1) / 2) * width for i in range(len(labels))]
            ax.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=name)
        ax.set_xticks(range(len(labels)), list(labels), rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = self._path(f"{stem}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        self.plots.append(path)
        return path

    def _path(self, filename: str) -> Path:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        suffix = "-quick" if self.quick else ""
        stem, dot, ext = filename.rpartition(".")
        return self.results_dir / f"{self.name}-{stem}{suffix}{dot}{ext}"

    def markdown(self) -> str:
        mode = "quick" if self.quick else "full"
        out = [
            f"## {self.title}",
            "",
            f"_{mode} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}_",
            "",
        ]
        out += [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        out += [t.markdown() for t in self.tables]
        out += [f"![{p.stem}]({p.name})" for p in self.plots]
        return "\n".join(out).rstrip() + "\n"

    def write(self) -> Path:
        """Print every table and write ``<name>[-quick].md``; returns the markdown path."""
        for table in self.tables:
            print(table.text())
        path = self.results_dir / f"{self.name}{'-quick' if self.quick else ''}.md"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown(), encoding="utf-8")
        print(f"wrote {path}" + "".join(f"\nwrote {p}" for p in self.plots))
        return path


def batch_thread_sweep(
    table: Table,
    settings: Sequence[tuple[int, int]],
    encoder: Any,
    encode: Callable[[], object],
    count: int,
    repeat: int,
    unit: str,
) -> None:
    """One row per (batch size, threads): p50 s, ``unit``/s, CPU ms per input and the ratio to batch 1 on one thread
    (the first setting must be (1, 1)); ``encode`` runs on all ``count`` inputs with ``encoder.batch_size`` set."""
    from recagent.retrieval import configure_threads

    baseline = float("nan")
    for batch, threads in settings:
        configure_threads(threads)
        encoder.batch_size = batch
        stats = measure(encode, repeat=repeat, warmup=0)
        rate = count / (stats.p50 / 1000)
        if (batch, threads) == (1, 1):
            baseline = rate
        table.add(batch, threads, stats.p50 / 1000, rate, stats.cpu_p50 / count, ratio(rate, baseline))
        print(f"  batch {batch}, {threads} threads: {rate:.1f} {unit}/s")
