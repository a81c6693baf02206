from __future__ import annotations

import numpy as np
import pytest

from recagent.agent import add_gaussian_noise, redact
from recagent.agent.privacy import gaussian_sigma


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
