from __future__ import annotations

import numpy as np

from recagent.agent import Settings
from recagent.agent.factory import attach_index, open_store
from recagent.agent.profiles.pg_store import PostgresProfileStore
from recagent.agent.profiles.store import ProfileStore
from recagent.retrieval import Catalog, Item, ItemIndex
from recagent.retrieval.pgvector import PgVectorBackend


def test_settings_select_postgres_for_the_store_and_the_index(pg_url: str, tmp_path) -> None:
    assert type(open_store(Settings(cache_dir=tmp_path))) is ProfileStore  # the default stays SQLite
    settings = Settings(cache_dir=tmp_path, store_url=pg_url, index_url=pg_url, store_vacuum_full=True)
    store = open_store(settings)
    assert isinstance(store, PostgresProfileStore) and store.shared and store.vacuum_full
    store.close()
    vectors = np.eye(4, 8, dtype=np.float32)
    index = ItemIndex(Catalog([Item(id=str(i), title=f"t{i}") for i in range(4)]), vectors, "e")
    attach_index(index, settings, "ml-100k-all-MiniLM-L6-v2-text")
    assert isinstance(index.search_backend, PgVectorBackend)
    assert index.search_backend.table == "items_ml_100k_all_minilm_l6_v2_text"
    assert [i.id for i, _ in index.search(vectors[2], 1)] == ["2"]
    index.search_backend.close()
    half = ItemIndex(index.catalog, vectors, "e")
    attach_index(half, settings.model_copy(update={"index_precision": "float16"}), "half")
    assert isinstance(half.search_backend, PgVectorBackend) and half.search_backend.stored_precision() == "float16"
    assert [i.id for i, _ in half.search(vectors[3], 1)] == ["3"]
    half.search_backend.close()
    assert "postgresql" not in repr(settings)  # the URLs may hold passwords: SecretStr
