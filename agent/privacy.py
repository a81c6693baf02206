"""Personal-data redaction for user text, and optional Gaussian noise on stored profile vectors.

Redaction runs on every review, comment and chat turn *before* it is stored or put in an LLM prompt; only
the redacted text is kept. It is pattern-based: e-mail addresses, phone numbers, card-like digit runs,
street addresses, and person names introduced by an honorific or "my name is". No offline named-entity
model ships with recagent, so bare names in free text ("Anna loved it") are not caught; pass a
``name_detector`` to :func:`redact` to add one.

Vector noise (``add_gaussian_noise``) is the Gaussian mechanism applied to one stored unit vector. What it
does: for a released vector, changing the events behind it (L2 sensitivity 2 for unit vectors) shifts the
output distribution by at most (epsilon, delta). What it does not: it covers only the vectors, not the
interests, evidence quotes or events stored beside them; it does no accounting across repeated saves (each
new version spends another epsilon); and noisy vectors make retrieval worse as epsilon shrinks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Card-like: 13-19 digits, optionally grouped by spaces or dashes. Checked before phones (it is longer).
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?!\w)"
    r"|(?<![\w+])\+\d{8,14}(?!\w)"
)
_STREET_WORDS = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|square|sq|terrace|"
    "way|parkway|pkwy|highway|hwy|strasse|straße|allee|weg|gasse"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'-]*\.?\s+){{1,4}}(?:{_STREET_WORDS})\b\.?"
    r"(?:,?\s*(?:apt|apartment|suite|unit|#)\s*\w+)?",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"\b(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?"
    r"|(?<=my name is )[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)",
)

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "address": "[ADDRESS]",
    "name": "[NAME]",
}


@dataclass
class Redaction:
    text: str
    found: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.found)


NameDetector = Callable[[str], Iterable[tuple[int, int]]]


def redact(text: str, name_detector: NameDetector | None = None) -> Redaction:
    """Replace personal data with placeholders like ``[EMAIL]``; returns the text and what was found."""
    found: dict[str, int] = {}

    def sub(kind: str, pattern: re.Pattern[str], value: str) -> str:
        value, n = pattern.subn(PLACEHOLDERS[kind], value)
        if n:
            found[kind] = found.get(kind, 0) + n
        return value

    out = sub("email", _EMAIL, text)
    out = sub("card", _CARD, out)
    out = sub("phone", _PHONE, out)
    out = sub("address", _ADDRESS, out)
    out = sub("name", _NAME, out)
    if name_detector is not None:
        spans = sorted(name_detector(out), reverse=True)
        for start, end in spans:
            out = out[:start] + PLACEHOLDERS["name"] + out[end:]
        if spans:
            found["name"] = found.get("name", 0) + len(spans)
    return Redaction(out, found)


def redact_text(text: str) -> str:
    return redact(text).text


def gaussian_sigma(epsilon: float, delta: float = 1e-5, sensitivity: float = 2.0) -> float:
    """Noise scale of the classic Gaussian mechanism (valid for epsilon < 1; larger epsilon over-noises)."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    if not 0 < delta < 1:
        raise ValueError("delta must be in (0, 1)")
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def add_gaussian_noise(
    vector: list[float] | np.ndarray,
    epsilon: float,
    delta: float = 1e-5,
    rng: np.random.Generator | None = None,
) -> list[float]:
    """A noisy, renormalised copy of a unit vector (sensitivity 2: any unit vector may replace any other)."""
    vec = np.asarray(vector, dtype=np.float64)
    rng = rng or np.random.default_rng()
    noisy = vec + rng.normal(0.0, gaussian_sigma(epsilon, delta), size=vec.shape)
    norm = float(np.linalg.norm(noisy))
    return (noisy / norm if norm > 0 else noisy).astype(np.float32).tolist()
