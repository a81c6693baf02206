from __future__ import annotations

import json
from pathlib import Path

import pytest

from recagent.retrieval import Catalog, DataFileError, Item, ItemFilter, load_catalog, load_events


def test_csv_catalog_loads_with_aliases_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(
        "item_id,name,description,genres,year,brand\nA1,Red Shoe,A shoe,Shoes|Red,2020,Acme\nB2,Blue Hat,,Hats,,\n"
    )
    catalog = load_catalog(path)
    assert len(catalog) == 2
    shoe = catalog["A1"]
    assert shoe.title == "Red Shoe" and shoe.genres == ("Shoes", "Red") and shoe.year == 2020
    assert shoe.metadata == {"brand": "Acme"}
    assert catalog["B2"].year is None


def test_jsonl_catalog_loads(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": str(i), "title": f"Item {i}", "genres": ["x"]}) for i in range(3))
    )
    assert load_catalog(path).ids == ["0", "1", "2"]


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,name_of_thing\n1,x\n")
    with pytest.raises(DataFileError, match="missing column 'title'"):
        load_catalog(path)


def test_bad_row_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,title,year\n1,Good,1999\n2,Bad,not-a-year\n")
    with pytest.raises(DataFileError, match=r"row 3: field 'year'"):
        load_catalog(path)


def test_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "title": "ok"}\n{"id": "2"\n')
    with pytest.raises(DataFileError, match="row 2: invalid JSON"):
        load_catalog(path)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(DataFileError, match="duplicate"):
        Catalog([Item(id="1", title="a"), Item(id="1", title="b")])


def test_events_load_and_validate(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,rating,timestamp\nu1,A1,5,10\nu1,B2,2,11\n")
    events = load_events(path)
    assert [e.rating for e in events] == [5.0, 2.0]
    path.write_text("user_id,item_id,rating\nu1,A1,eleven\n")
    with pytest.raises(DataFileError, match="field 'rating'"):
        load_events(path)


def test_item_filter() -> None:
    item = Item(id="1", title="Scream", genres=("Horror", "Thriller"), year=1996)
    assert not ItemFilter(exclude_genres=("horror",)).accepts(item)
    assert ItemFilter(include_genres=("Thriller",), year_min=1990, year_max=1999).accepts(item)
    assert not ItemFilter(year_min=2000).accepts(item)
    merged = ItemFilter(year_min=1990).merged(ItemFilter(year_min=1995, year_max=2000))
    assert (merged.year_min, merged.year_max) == (1995, 2000)


def test_unknown_ids_raise_recagent_errors_that_are_still_key_errors() -> None:
    from recagent.retrieval import RecagentError, UnknownItemError, UnknownUserError, load_bundled

    data = load_bundled("ml-100k")
    with pytest.raises(UnknownItemError) as item:
        data.catalog["no-such-item"]
    assert isinstance(item.value, KeyError) and isinstance(item.value, RecagentError)
    assert str(item.value) == "unknown item id 'no-such-item'"  # plain, not KeyError's quoted repr
    with pytest.raises(UnknownUserError, match="unknown user 'nobody'"):
        data.history("nobody")
