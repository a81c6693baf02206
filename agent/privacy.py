"""Personal-data redaction for user text, and optional Gaussian noise on stored profile vectors.

Redaction runs on every review, comment and chat turn *before* it is stored or put in an LLM prompt; only
the redacted text is kept. What it finds, and how each kind is confirmed so look-alikes survive:

* e-mail addresses (pattern);
* IBANs: country code + check digits, the country's length, and the ISO 7064 mod-97 check;
* payment cards: 14-19 digits, a card network's prefix and length, and the Luhn check, so ISBNs, EAN
  barcodes and order numbers are left alone;
* IPv4 and IPv6 addresses, confirmed by :mod:`ipaddress`;
* phone numbers, found and validated by ``phonenumbers`` (Google's libphonenumber): international numbers
  (``+CC``) valid anywhere; national ones valid in one of ``regions`` and written like a phone number
  (grouped, or with a trunk prefix), plus North-American ``(555) 123-4567`` style;
* street addresses (number + street word, continental "Hauptstraße 5", French "12 rue ...", PO boxes);
* person names introduced by a cue ("my name is", "call me", an honorific, a sign-off). Cues match in any
  case; names must be capitalised. Catalogue titles passed as ``protected`` are never touched
  ("Mrs. Doubtfire", "Dr. Strangelove"), and bare names ("Jennifer Lopez was great") are the taste signal
  of a film review, so they are kept. Pass a ``name_detector`` to add a named-entity model.

The corpus in ``tests/agent/pii_corpus.py`` measures recall and precision per kind (see docs/privacy.md).

Vector noise (``add_gaussian_noise``) is the Gaussian mechanism applied to one stored unit vector. What it
does: for a released vector, changing the events behind it (L2 sensitivity 2 for unit vectors) shifts the
output distribution by at most (epsilon, delta). What it does not: it covers only the vectors, not the
interests, evidence quotes or events stored beside them; it does no accounting across repeated saves (each
new version spends another epsilon); and noisy vectors make retrieval worse as epsilon shrinks.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

PIIKind = Literal["email", "iban", "card", "ip", "phone", "address", "name"]

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARD]",
    "ip": "[IP]",
    "phone": "[PHONE]",
    "address": "[ADDRESS]",
    "name": "[NAME]",
}

# Regions whose national phone formats are recognised without a +CC prefix.
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "JP", "ES", "IT", "NL", "CA", "BR")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# IBAN lengths by country (SWIFT IBAN registry); a candidate must have exactly its country's length.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ -]?[A-Za-z0-9])")

# Card networks: (prefix ranges, allowed lengths). 13-digit Visa is obsolete and would catch EAN-13 codes.
_CARD_NETWORKS: tuple[tuple[tuple[tuple[int, int], ...], frozenset[int]], ...] = (
    (((4, 4),), frozenset({16, 19})),  # Visa
    (((51, 55), (2221, 2720)), frozenset({16})),  # Mastercard
    (((34, 34), (37, 37)), frozenset({15})),  # American Express
    (((6011, 6011), (644, 649), (65, 65)), frozenset({16, 17, 18, 19})),  # Discover
    (((3528, 3589),), frozenset({16, 17, 18, 19})),  # JCB
    (((300, 305), (36, 36), (38, 39)), frozenset({14, 15, 16})),  # Diners Club
    (((62, 62),), frozenset({16, 17, 18, 19})),  # UnionPay
    (((50, 50), (56, 58), (67, 67)), frozenset({16, 17, 18, 19})),  # Maestro
)
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){13,18}(?![\d-]|[.,]\d)")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)

_NANP = re.compile(r"(?<![\w+])(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[.-]\d{4}(?!\w)")
_PHONE_SEPARATED = re.compile(r"[\s().-]")

_STREET_WORDS = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|square|sq|terrace|"
    "way|parkway|pkwy|highway|hwy|close|crescent|row|mews|strasse|straße|allee|weg|gasse"
)
# Street-name words must be capitalised (case-sensitive) while street words and cues match in any case:
# "2 was way too small" in a review is not an address, "742 Evergreen Terrace" is.
_ADDRESS = re.compile(
    r"(?:"
    # 221B Baker Street / 1600 Pennsylvania Avenue NW / 10 Downing St, Apt 4
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][\w'-]*\.?\s+){{1,4}}(?i:{_STREET_WORDS})\b\.?"
    r"(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
    r"(?:,?\s*(?i:apt|apartment|suite|unit|flat|#)\.?\s*\w+)?"
    # Hauptstraße 5 / Kastanienallee 12a ("Unter den Linden 77" has no street word and is not caught)
    r"|\b[A-Z][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|gracht|laan|plein)"
    r"\s+\d{1,4}[a-z]?\b"
    # 12 rue de la Paix / 5 bis avenue des Champs
    r"|\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|boulevard|bd|place|allée|chemin|impasse|quai|via|"
    r"viale|piazza|calle|avenida|plaza)\s+(?:(?:de|du|des|la|le|l'|del|della|di)\s+)*[A-Z][\w'-]+"
    r"(?:\s+[A-Z][\w'-]+){0,3}"
    # PO Box 1234
    r"|\b(?i:P\.?\s?O\.?\s*Box)\s+\d{1,6}\b"
    r")"
)
# Postal codes right after an address ("..., London SW1A 1AA", "..., 10115 Berlin", "..., CA 94105").
_POSTCODE_TAIL = re.compile(
    r"(?:,?\s*(?:[A-Z][\w'-]+\s?){0,3},?\s*(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|\d{5}(?:\s+[A-Z][\w'-]+)?"
    r"|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}))?"
)

_NAME_TOKEN = r"[A-Z][a-zà-öø-ÿ]+(?:[-'][A-Z]?[a-zà-öø-ÿ]+)?"
_FULL_NAME = rf"{_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN}){{0,2}}"  # a name does not run across lines
_NAME = re.compile(
    r"(?:"
    rf"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Madam|Herr|Frau|Mme|Mlle|Sr|Sra)\.?\s+(?P<h>{_FULL_NAME})"
    rf"|(?i:\bmy\s+name\s+is|\bmy\s+name's|\bname\s*:|\bi\s+am\s+called|\bcall\s+me|\bje\s+m'appelle|"
    rf"\bich\s+heiße|\bme\s+llamo|\bmi\s+chiamo)\s+(?P<c>{_FULL_NAME})"
    rf"|(?i:\bthis\s+is)\s+(?P<t>{_FULL_NAME})(?=\s+(?i:speaking|here)\b)"
    rf"|(?i:\b(?:regards|cheers|thanks|sincerely|best|yours|signed))[,:]?\s+(?P<s>{_FULL_NAME})\s*[.!]?\s*$"
    r")",
    re.MULTILINE,
)


@dataclass(frozen=True)
class PIISpan:
    """One piece of personal data found in a text: ``text[start:end]`` is of ``kind``."""

    kind: PIIKind
    start: int
    end: int


@dataclass
class Redaction:
    text: str
    found: dict[str, int] = field(default_factory=dict)
    spans: list[PIISpan] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.found)


NameDetector = Callable[[str], Iterable[tuple[int, int]]]


def luhn_valid(digits: str) -> bool:
    total = 0
    for pos, char in enumerate(reversed(digits)):
        d = int(char)
        if pos % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_network_matches(digits: str) -> bool:
    for ranges, lengths in _CARD_NETWORKS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return True
    return False


def iban_valid(iban: str) -> bool:
    """Country length and the ISO 7064 mod-97-10 check of an IBAN without separators."""
    iban = iban.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        chars, pos = [*match.group(1), *match.group(2)], match.end()
        # Consume alphanumerics, allowing single spaces or dashes between groups, up to the country length.
        while len(chars) < length and pos < len(text):
            char = text[pos]
            if char.isascii() and char.isalnum():
                chars.append(char)
            elif not (char in " -" and pos + 1 < len(text) and text[pos + 1].isalnum()):
                break
            pos += 1
        boundary = pos >= len(text) or not text[pos].isalnum()
        if len(chars) == length and boundary and iban_valid("".join(chars)):
            yield match.start(), pos


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if _card_network_matches(digits) and luhn_valid(digits):
            yield match.span()


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            candidate = match.group(0)
            if pattern is _IPV6 and (candidate.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", candidate)):
                continue
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            yield match.span()


def _looks_like_isbn(raw: str) -> bool:
    """A hyphenated ISBN (978-3-16-148410-0, 0-306-40615-2): four or five groups and a valid check digit."""
    groups = raw.split("-")
    digits = raw.replace("-", "")
    if len(groups) not in (4, 5) or not re.fullmatch(r"\d{9}[\dXx]|\d{13}", digits):
        return False
    if len(digits) == 10:
        total = sum((10 - i) * (10 if c in "Xx" else int(c)) for i, c in enumerate(digits))
        return total % 11 == 0
    return sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits)) % 10 == 0


def _phones(text: str, regions: Sequence[str]) -> Iterator[tuple[int, int]]:
    import phonenumbers
    from phonenumbers import Leniency, PhoneNumberMatcher

    for region in regions:
        for match in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
            raw = match.raw_string.strip()
            if "#" in raw or _looks_like_isbn(raw):
                continue
            digits = sum(c.isdigit() for c in raw)
            if raw.startswith("+"):
                # +CC numbers: the country code and length suffice (reserved fiction ranges are still phones).
                accepted = digits >= 8 and phonenumbers.is_possible_number(match.number)
            else:
                # National numbers are long (9+ digits with area code) and written grouped or with a trunk
                # prefix; shorter runs are body measurements ("38-30-40"), weights and prices in reviews.
                grouped = bool(_PHONE_SEPARATED.search(raw)) or raw.startswith("0")
                accepted = digits >= 9 and grouped and phonenumbers.is_valid_number(match.number)
            if accepted:
                yield match.start, match.end
    for nanp in _NANP.finditer(text):  # (555) 123-4567: a phone by its form, valid exchange or not
        yield nanp.span()


def _addresses(text: str) -> Iterator[tuple[int, int]]:
    for match in _ADDRESS.finditer(text):
        tail = _POSTCODE_TAIL.match(text, match.end())
        end = tail.end() if tail is not None and tail.end() > match.end() else match.end()
        yield match.start(), end


def _names(text: str) -> Iterator[tuple[int, int]]:
    for match in _NAME.finditer(text):
        group = next(g for g in ("h", "c", "t", "s") if match.group(g))
        yield match.span(group)


class Redactor:
    """Finds and replaces personal data; one per process, configured once (regions, protected titles).

    ``protected`` phrases (catalogue titles) are never redacted, so "Mr. Holland's Opus" stays a film.
    """

    def __init__(
        self,
        regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        protected: Iterable[str] = (),
        name_detector: NameDetector | None = None,
    ) -> None:
        self.regions = tuple(regions)
        self.name_detector = name_detector
        # Only titles a name cue could fire on need guarding; the rest cannot be touched anyway.
        self._protected = sorted(
            {p for p in protected if _NAME.search(p) or _ADDRESS.search(p)}, key=len, reverse=True
        )

    def _protected_spans(self, text: str) -> list[tuple[int, int]]:
        if not self._protected:
            return []
        lowered = text.lower()
        spans = []
        for phrase in self._protected:
            start = lowered.find(phrase.lower())
            while start >= 0:
                spans.append((start, start + len(phrase)))
                start = lowered.find(phrase.lower(), start + 1)
        return spans

    def find(self, text: str) -> list[PIISpan]:
        """Non-overlapping spans in text order; earlier kinds win (an IBAN's digits are not also a phone)."""
        finders: list[tuple[PIIKind, Iterable[tuple[int, int]]]] = [
            ("email", (m.span() for m in _EMAIL.finditer(text))),
            ("iban", _ibans(text)),
            ("card", _cards(text)),
            ("ip", _ips(text)),
            ("phone", _phones(text, self.regions)),
            ("address", _addresses(text)),
            ("name", _names(text)),
        ]
        if self.name_detector is not None:
            finders.append(("name", self.name_detector(text)))
        protected = self._protected_spans(text)
        taken: list[PIISpan] = []
        for kind, spans in finders:
            for start, end in spans:
                if start >= end or any(start < t.end and t.start < end for t in taken):
                    continue
                if kind in ("name", "address") and any(p <= start and end <= q for p, q in protected):
                    continue
                taken.append(PIISpan(kind, start, end))
        return sorted(taken, key=lambda s: s.start)

    def redact(self, text: str) -> Redaction:
        spans = self.find(text)
        out = text
        found: dict[str, int] = {}
        for span in reversed(spans):
            out = out[: span.start] + PLACEHOLDERS[span.kind] + out[span.end :]
            found[span.kind] = found.get(span.kind, 0) + 1
        return Redaction(out, found, spans)

    def __call__(self, text: str) -> str:
        return self.redact(text).text


def title_phrases(titles: Iterable[str]) -> list[str]:
    """Catalogue titles as people write them: whole, and the main title before a subtitle or alias
    ("Dr. Strangelove or: How I Learned ..." is also "Dr. Strangelove")."""
    phrases = set()
    for title in titles:
        phrases.add(title.strip())
        main = re.split(r"\s+or:|:|\s\(", title, maxsplit=1)[0].strip()
        if len(main) >= 4:
            phrases.add(main)
    return sorted(phrases)


DEFAULT_REDACTOR = Redactor()


def redact(text: str, name_detector: NameDetector | None = None) -> Redaction:
    """Replace personal data with placeholders like ``[EMAIL]``; returns the text and what was found."""
    redactor = DEFAULT_REDACTOR if name_detector is None else Redactor(name_detector=name_detector)
    return redactor.redact(text)


def redact_text(text: str) -> str:
    return DEFAULT_REDACTOR(text)


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
