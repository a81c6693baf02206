from __future__ import annotations

from recagent.retrieval.reviews import clothing_reviews_path, load_clothing_reviews


def test_real_clothing_reviews_read_in_place() -> None:
    path = clothing_reviews_path()
    assert "site-packages" in str(path) and path.name.startswith("WomensClothing")
    reviews = load_clothing_reviews(limit=50, min_chars=100)
    assert len(reviews) == 50 and len({r.review_id for r in reviews}) == 50
    assert all(len(r.text) >= 100 and 1 <= r.rating <= 5 for r in reviews)
    assert reviews[0].review_id == "clothing-review-1"  # row 0 is shorter than 100 characters
