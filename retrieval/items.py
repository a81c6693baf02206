"""Items and the catalogue that holds them."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DataFileError, UnknownItemError


class Item(BaseModel):
    """One recommendable thing: a movie, a product, an article."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=512)
    title: str = Field(min_length=1, max_length=1024)
    text: str = Field(default="", max_length=20_000, description="Free description used for the embedding.")
    genres: tuple[str, ...] = ()
    year: int | None = Field(default=None, ge=0, le=3000)
    image: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "title")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("genres", mode="before")
    @classmethod
    def _split_genres(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.replace("|", ",").split(",")
            return tuple(p.strip() for p in parts if p.strip())
        return value

    @property
    def display_title(self) -> str:
        if self.year is not None and f"({self.year})" not in self.title:
            return f"{self.title} ({self.year})"
        return self.title

    @property
    def natural_title(self) -> str:
        """The display title as people write it: "The Lion King (1994)" for "Lion King, The (1994)"."""
        return natural_title(self.display_title)

    def embedding_text(self) -> str:
        """The text the encoder sees: title, year, genres and description."""
        parts = [self.display_title]
        if self.genres:
            parts.append("Genres: " + ", ".join(self.genres))
        if self.text:
            parts.append(self.text)
        return ". ".join(parts)


class ItemFilter(BaseModel):
    """Hard constraints applied inside retrieval, never after ranking."""

    include_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None

    def is_empty(self) -> bool:
        return (
            not (self.include_genres or self.exclude_genres)
            and self.year_min is None
            and self.year_max is None
        )

    def accepts(self, item: Item) -> bool:
        genres = {g.lower() for g in item.genres}
        if self.include_genres and not genres & {g.lower() for g in self.include_genres}:
            return False
        if genres & {g.lower() for g in self.exclude_genres}:
            return False
        if self.year_min is not None and (item.year is None or item.year < self.year_min):
            return False
        return not (self.year_max is not None and (item.year is None or item.year > self.year_max))

    def merged(self, other: ItemFilter) -> ItemFilter:
        """Both filters at once: the stricter bound wins."""

        def pick(a: int | None, b: int | None, fn: Any) -> int | None:
            return b if a is None else a if b is None else fn(a, b)

        return ItemFilter(
            include_genres=tuple(dict.fromkeys(self.include_genres + other.include_genres)),
            exclude_genres=tuple(dict.fromkeys(self.exclude_genres + other.exclude_genres)),
            year_min=pick(self.year_min, other.year_min, max),
            year_max=pick(self.year_max, other.year_max, min),
        )


class CatalogColumns:
    """What hard filters read, as arrays over catalogue positions: years (NaN where unknown) and a genre matrix.

    Kept beside an index on disk, so a loaded catalogue of a million items filters without parsing every row."""

    def __init__(self, years: np.ndarray, genre_names: Sequence[str], genres: np.ndarray) -> None:
        if genres.shape != (len(years), max(1, len(genre_names))):
            raise ValueError(f"genre matrix of shape {genres.shape} for {len(years)} items")
        self.years = np.asarray(years, dtype=np.float64)
        self.genre_names = list(genre_names)
        self.genres = np.asarray(genres, dtype=bool)
        self.genre_pos = {g.lower(): j for j, g in enumerate(self.genre_names)}

    @classmethod
    def of(cls, items: Sequence[Item]) -> CatalogColumns:
        names = sorted({g for item in items for g in item.genres})
        pos = {g.lower(): j for j, g in enumerate(names)}
        genres = np.zeros((len(items), max(1, len(names))), dtype=bool)
        for row, item in enumerate(items):
            for g in item.genres:
                genres[row, pos[g.lower()]] = True
        years = np.array([np.nan if it.year is None else it.year for it in items], dtype=np.float64)
        return cls(years, names, genres)

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:  # a file object: np.savez would append ".npz" to a temporary name
            np.savez(
                fh,
                years=self.years,
                genres=np.packbits(self.genres, axis=1),
                names=np.array(self.genre_names, dtype=str),
            )

    @classmethod
    def load(cls, path: Path, count: int) -> CatalogColumns:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            genres = np.unpackbits(data["genres"], axis=1, count=max(1, len(names))).astype(bool)
            return cls(data["years"][:count], names, genres[:count])


class Catalog:
    """An ordered, id-addressable set of items.

    A catalogue read back with an index (:meth:`from_rows`) holds its items as JSON rows and validates each one
    the first time it is used: a search touches a handful of a million items, and validating all of them took
    most of a 1M-item index's load (``benchmarks/bench_index_load.py``).
    """

    def __init__(self, items: Iterable[Item], name: str = "catalog", root: Path | None = None) -> None:
        self.name = name
        # Where relative ``image`` paths start: the catalogue file's folder (None: the working directory).
        self.root = root
        self._items: list[Item | None] = []
        self._rows: Sequence[bytes] | None = None
        self._by_id: dict[str, int] = {}
        for item in items:
            if item.id in self._by_id:
                raise DataFileError(f"{name}: duplicate item id {item.id!r}")
            self._by_id[item.id] = len(self._items)
            self._items.append(item)
        self._ids = list(self._by_id)
        self._by_title: dict[str, str] | None = None
        self._columns: CatalogColumns | None = None

    @classmethod
    def from_rows(
        cls,
        ids: Sequence[str],
        rows: Sequence[bytes],
        name: str = "catalog",
        columns: CatalogColumns | None = None,
    ) -> Catalog:
        """A catalogue of ``Item`` JSON rows (one per id, in order), each validated when first read."""
        if len(ids) != len(rows):
            raise DataFileError(f"{name}: {len(ids)} ids for {len(rows)} item rows")
        catalog = cls((), name=name)
        catalog._by_id = {item_id: pos for pos, item_id in enumerate(ids)}
        if len(catalog._by_id) != len(ids):
            raise DataFileError(f"{name}: duplicate item ids")
        if columns is not None and len(columns.years) != len(ids):
            raise DataFileError(f"{name}: filter columns for {len(columns.years)} items, not {len(ids)}")
        catalog._ids = list(ids)
        catalog._items = [None] * len(ids)
        catalog._rows = rows
        catalog._columns = columns
        return catalog

    def item_at(self, pos: int) -> Item:
        """The item at catalogue position ``pos`` (what index rows point at)."""
        item = self._items[pos]
        if item is None:
            assert self._rows is not None  # only a from_rows catalogue leaves items unread
            try:
                item = Item.model_validate_json(self._rows[pos])
            except ValidationError as exc:
                raise DataFileError(
                    f"{self.name}: item row {pos + 1} is corrupt ({exc.errors()[0]['msg']})"
                ) from None
            if item.id != self._ids[pos]:
                raise DataFileError(
                    f"{self.name}: item row {pos + 1} holds {item.id!r}, expected {self._ids[pos]!r}"
                )
            self._items[pos] = item
        return item

    def json_rows(self) -> Iterator[str]:
        """Each item as one JSON line's text, in order; a row never read is passed on as it was stored, so
        saving a loaded catalogue does not validate it all."""
        for pos, item in enumerate(self._items):
            if item is None and self._rows is not None:
                yield self._rows[pos].decode("utf-8")
            else:
                yield self.item_at(pos).model_dump_json()

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Item]:
        return (self.item_at(pos) for pos in range(len(self._ids)))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def __getitem__(self, item_id: str) -> Item:
        try:
            return self.item_at(self._by_id[item_id])
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def get(self, item_id: str) -> Item | None:
        pos = self._by_id.get(item_id)
        return None if pos is None else self.item_at(pos)

    def position(self, item_id: str) -> int:
        return self._by_id[item_id]

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def find_title(self, title: str) -> Item | None:
        """Exact match on a normalised title, with or without the year."""
        if self._by_title is None:
            self._by_title = {}
            for item in self:
                self._by_title.setdefault(normalise_title(item.title), item.id)
                self._by_title.setdefault(normalise_title(item.display_title), item.id)
        item_id = self._by_title.get(normalise_title(title))
        return None if item_id is None else self[item_id]

    def columns(self) -> CatalogColumns:
        """Years and genres as arrays (computed once, or read with the index)."""
        if self._columns is None:
            self._columns = CatalogColumns.of(list(self))
        return self._columns

    def genres(self) -> list[str]:
        return list(self.columns().genre_names)


# MovieLens files trailing articles ("Lion King, The (1994)"); people and models write "The Lion King (1994)".
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+?), (?P<article>the|a|an|les|la|le|il|el|das|der|die|los|las)(?P<year> \(\d{4}\))?$",
    re.IGNORECASE,
)


def natural_title(title: str) -> str:
    """A trailing article moved to the front, case kept: small models garble "Crucible, The (1996)" into
    "The (1996)" when they copy it, and readers expect "The Crucible (1996)"."""
    match = _TRAILING_ARTICLE.match(title)
    return f"{match['article']} {match['rest']}{match['year'] or ''}" if match else title


def normalise_title(title: str) -> str:
    """Lower case, single spaces, straight apostrophes, a trailing article moved to the front."""
    return natural_title(" ".join(title.lower().replace("\u2019", "'").split()))


_CATALOG_ALIASES = {"item_id": "id", "name": "title", "description": "text", "genre": "genres"}


def load_catalog(path: str | Path) -> Catalog:
    """Read a catalogue from CSV (header row) or JSONL (one object per line).

    Required fields: ``id`` and ``title``; optional: ``text``, ``genres`` (``|`` or ``,`` separated),
    ``year``, ``image`` (a path relative to this file, an absolute path or a ``file://`` URL; see
    ``retrieval/images.py``); any other column lands in ``metadata``.
    """
    path = Path(path)
    items = []
    for row_no, row in _read_rows(path, required=("id", "title"), aliases=_CATALOG_ALIASES):
        known = {k: v for k, v in row.items() if k in Item.model_fields and k != "metadata"}
        extra = {k: v for k, v in row.items() if k not in Item.model_fields and v not in (None, "")}
        if known.get("year") in ("", None):
            known.pop("year", None)
        items.append(_validate(Item, {**known, "metadata": extra}, path, row_no))
    if not items:
        raise DataFileError(f"{path}: no items found")
    return Catalog(items, name=path.stem, root=path.parent.resolve())


def _validate(model: type[BaseModel], data: dict[str, Any], path: Path, row_no: int) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        raise DataFileError(f"{path}: row {row_no}: field '{field}': {err['msg']}") from None


def _read_rows(
    path: Path, required: tuple[str, ...], aliases: dict[str, str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, row dict) from CSV/TSV/JSONL, checking the required fields up front."""
    if not path.exists():
        raise DataFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as fh:
            for row_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFileError(f"{path}: row {row_no}: invalid JSON ({exc.msg})") from None
                if not isinstance(raw, dict):
                    raise DataFileError(f"{path}: row {row_no}: expected a JSON object")
                row: dict[str, Any] = {str(aliases.get(k, k)): v for k, v in raw.items()}
                missing = [f for f in required if row.get(f) in (None, "")]
                if missing:
                    raise DataFileError(f"{path}: row {row_no}: missing field '{missing[0]}'")
                yield row_no, row
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            header = [aliases.get(h.strip(), h.strip()) for h in reader.fieldnames or []]
            missing = [f for f in required if f not in header]
            if missing:
                raise DataFileError(
                    f"{path}: missing column '{missing[0]}' (header: {', '.join(header) or 'empty'})"
                )
            reader.fieldnames = header
            for row_no, raw_row in enumerate(reader, start=2):
                row = {str(k): v for k, v in raw_row.items() if k is not None}
                blank = [f for f in required if not (row.get(f) or "").strip()]
                if blank:
                    raise DataFileError(f"{path}: row {row_no}: field '{blank[0]}' is empty")
                yield row_no, row
    else:
        raise DataFileError(f"{path}: unsupported format '{suffix}' (use .csv, .tsv or .jsonl)")
