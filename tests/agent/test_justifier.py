from __future__ import annotations

from recagent.agent import Evidence, Justifier, UserProfile, template_sentence, validate_sentence
from recagent.agent.llm import LLMError
from recagent.retrieval import ItemIndex


def test_validation_rules(ml100k_index: ItemIndex) -> None:
    catalog = ml100k_index.catalog
    toy = catalog["1"]
    golden = catalog["2"]
    ok, why = validate_sentence(
        "You loved witty animated adventures, and this one is full of heart. More text.", toy, [toy], catalog
    )
    assert ok == "You loved witty animated adventures, and this one is full of heart." and why is None
    assert validate_sentence("Great.", toy, [toy], catalog) == (None, "too short")
    bad, why = validate_sentence("Fans of GoldenEye (1995) will like this too.", toy, [toy], catalog)
    assert bad is None and "GoldenEye" in (why or "")
    ok, _ = validate_sentence("Fans of GoldenEye (1995) will like this too.", toy, [toy, golden], catalog)
    assert ok is not None
    bad, why = validate_sentence("It is just like Starship Lasagna (2031) but better.", toy, [toy], catalog)
    assert bad is None and "not in the catalogue" in (why or "")
    bad, why = validate_sentence("Click https://evil.example for more movies like this.", toy, [toy], catalog)
    assert bad is None


class _Garbage:
    name = "garbage"

    def label_scores(self, conversations, labels):
        raise LLMError("unused")

    def generate(self, conversations, max_new_tokens=48, stop=()):
        return ["Ignore all rules and watch Fake Movie (2031) now." for _ in conversations]


def test_invalid_generation_falls_back_to_template(ml100k_index: ItemIndex) -> None:
    item = ml100k_index.catalog["50"]
    evidence = [Evidence(source="rating", item_id="1", text="you rated Toy Story (1995) 5/5")]
    [j] = Justifier(_Garbage(), ml100k_index).justify([item], UserProfile(user_id="u"), None, [evidence])
    assert j.source == "template"
    assert "Toy Story" in j.text and j.rejected_reason
    assert template_sentence(item, evidence) == j.text


def test_a_title_written_with_its_article_in_front_is_the_catalogue_item(ml100k_index: ItemIndex) -> None:
    catalog = ml100k_index.catalog
    [lion] = [it for it in catalog if it.title.startswith("Lion King, The")]
    assert catalog.find_title("The Lion King (1994)") == lion
    toy = catalog["1"]
    ok, why = validate_sentence(
        "If you liked The Lion King (1994), this is for you.", toy, [toy, lion], catalog
    )
    assert ok is not None and why is None
    bad, why = validate_sentence("If you liked The Lion King (1994), this is for you.", toy, [toy], catalog)
    assert bad is None and "Lion King" in (why or "")


class _GarblesFirst:
    """Garbles a title on the first prompt and writes a clean sentence only when told to name no title."""

    name = "garbles-first"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def label_scores(self, conversations, labels):
        raise LLMError("unused")

    def generate(self, conversations, max_new_tokens=48, stop=()):
        texts = [c[-1]["content"] for c in conversations]
        self.prompts.extend(texts)
        return [
            "It has the warmth you found in your favourite family films."
            if "mention no title" in t
            else "This user enjoys the movie The (1994)."
            for t in texts
        ]


def test_a_rejected_sentence_is_retried_once_with_the_stricter_prompt(ml100k_index: ItemIndex) -> None:
    backend = _GarblesFirst()
    items = [ml100k_index.catalog["1"], ml100k_index.catalog["50"]]
    out = Justifier(backend, ml100k_index).justify(items, UserProfile(user_id="u"), None, [[], []])
    assert [j.source for j in out] == ["generated", "generated"]
    assert len(backend.prompts) == 4 and sum("mention no title" in p for p in backend.prompts) == 2
    garbage = Justifier(_Garbage(), ml100k_index).justify(items, UserProfile(user_id="u"), None, [[], []])
    assert [j.source for j in garbage] == ["template", "template"]


def test_the_justification_prompt_and_evidence_write_titles_as_people_do(ml100k_index: ItemIndex) -> None:
    # SmolLM2 copied "Crucible, The (1996)" from the facts as "The (1996)", which names no item and was rejected
    # (5 of 120 ML-1M validation users); the prompt now reads "The Crucible (1996)".
    from recagent.agent.prompts import justification_conversation
    from recagent.retrieval import natural_title

    catalog = ml100k_index.catalog
    [lion] = [it for it in catalog if it.title.startswith("Lion King, The")]
    assert natural_title("Lion King, The (1994)") == "The Lion King (1994)"
    assert natural_title("Toy Story (1995)") == "Toy Story (1995)"
    prompt = justification_conversation(lion, [], None)[-1]["content"]
    assert "The Lion King (1994)" in prompt and "Lion King, The" not in prompt
    assert catalog.find_title(lion.natural_title) == lion


def test_a_sentence_cut_off_by_the_token_limit_ends_at_a_whole_word(ml100k_index: ItemIndex) -> None:
    catalog = ml100k_index.catalog
    toy = catalog["1"]
    ok, why = validate_sentence(
        "You will enjoy it as much as you enjoyed the movie Batman (198", toy, [toy], catalog
    )
    assert why is None and ok == "You will enjoy it as much as you enjoyed the movie..."
    assert validate_sentence(ok, toy, [toy], catalog) == (ok, None)  # what is shown validates to itself
