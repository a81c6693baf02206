from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_privacy import measure, served_redactor
from recagent.agent import add_gaussian_noise, redact
from recagent.agent.privacy import Redactor, gaussian_sigma, iban_valid, luhn_valid

from .pii_corpus import BENIGN, PII


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("write to jane.doe+films@mail.example.org today", "email", "jane.doe+films@mail.example.org"),
        ("call me on +44 20 7946 0958 tonight", "phone", "7946 0958"),
        ("my number is (555) 123-4567", "phone", "123-4567"),
        ("or 555.123.4567", "phone", "555.123.4567"),
        ("card 4111 1111 1111 1111 exp 12/27", "card", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111", "card", "4111-1111-1111-1111"),
        ("ship it to 221B Baker Street, London", "address", "221B Baker Street"),
        ("I live at 1600 Pennsylvania Avenue NW", "address", "1600 Pennsylvania Avenue"),
        ("ask Dr. Susan Calvin about it", "name", "Susan Calvin"),
        ("hi, my name is Ada Lovelace", "name", "Ada Lovelace"),
    ],
)
def test_redacts_personal_data(text: str, kind: str, secret: str) -> None:
    result = redact(text)
    assert secret not in result.text and result.found.get(kind, 0) >= 1, result


@pytest.mark.parametrize(
    "text",
    [
        "no horror, something funny from the 90s",
        "I loved Se7en (1995) and 12 Monkeys, rated 4.5 out of 5",
        "size 8 fits, 32 inch waist, 2 stars for the zipper",
        "under $50 please, after 2000",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text).text == text


def test_corpus_recall_and_precision_per_kind() -> None:
    """The served redactor on the labelled corpus: >= 0.95 recall and precision for every kind with 5+ cases."""
    assert len(PII) >= 60 and len(BENIGN) >= 40
    scores, changed = measure(served_redactor(), PII, BENIGN)
    kinds = {s.kind: s for s in scores}
    assert {"email", "phone", "card", "iban", "ip", "address", "name"} <= set(kinds)
    for score in scores:
        if score.secrets >= 5:
            assert score.recall >= 0.95, score
            assert score.precision >= 0.95, score
    assert changed == []


# The four bugs the security review found, kept as regressions.
def test_capitalised_name_cue() -> None:
    result = redact("My name is Anna Smith")
    assert "Anna" not in result.text and result.found == {"name": 1}


def test_iban_is_one_span_not_a_mangled_card() -> None:
    result = redact("DE89 3704 0044 0532 0130 00")
    assert result.text == "[IBAN]" and result.found == {"iban": 1}
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


def test_ip_addresses_are_redacted() -> None:
    assert redact("from 192.168.0.17 and 2001:db8::ff00:42:8329").text == "from [IP] and [IP]"
    assert redact("version 1.2.3 and 999.1.1.1").found == {}


def test_digit_runs_need_luhn_and_a_card_network() -> None:
    for text in ("ISBN 9780306406157", "EAN 4006381333931", "order 1234567890123456", "4111 1111 1111 1112"):
        assert redact(text).text == text
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert redact("4111111111111111").text == "[CARD]"


def test_catalogue_titles_are_protected_from_name_cues() -> None:
    served = Redactor(protected=["Mrs. Doubtfire", "Dr. Strangelove"])
    assert (
        served("I loved Mrs. Doubtfire and Dr. Strangelove") == "I loved Mrs. Doubtfire and Dr. Strangelove"
    )
    assert served("ask Dr. Susan Calvin") == "ask Dr. [NAME]"  # a name that is no title is still caught


def test_optional_name_detector() -> None:
    result = redact("Anna loved it", name_detector=lambda t: [(0, 4)] if t.startswith("Anna") else [])
    assert result.text == "[NAME] loved it" and result.found == {"name": 1}


def test_gaussian_noise_scale_follows_epsilon() -> None:
    assert gaussian_sigma(1.0) == pytest.approx(2 * np.sqrt(2 * np.log(1.25 / 1e-5)))
    assert gaussian_sigma(0.5) == pytest.approx(2 * gaussian_sigma(1.0))
    vec = np.zeros(384)
    vec[0] = 1.0
    rng = np.random.default_rng(0)
    # Smaller epsilon, more noise: the noisy copy drifts further from the original.
    cos = {
        eps: np.mean([np.dot(vec, add_gaussian_noise(vec, eps, rng=rng)) for _ in range(20)])
        for eps in (100, 1000)
    }
    assert cos[100] < cos[1000]
    with pytest.raises(ValueError):
        gaussian_sigma(-1)
