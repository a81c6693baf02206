from __future__ import annotations

import psycopg


def test_bundled_postgres_runs_pgvector_on_loopback(pg_server, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        user = conn.execute("SELECT current_user").fetchone()[0]
    assert version.startswith("18.") and ext is not None and ext[0].startswith("0.8")
    assert listen == "127.0.0.1" and user == "postgres"
    assert pg_server.started_in_s < 60
    print(f"PostgreSQL {version}, pgvector {ext[0]}, started in {pg_server.started_in_s:.2f} s")
