"""API keys bound to users or tenants.

``RECAGENT_API_KEYS`` holds the keys. Plain ``key1,key2`` gives each key every user (the original form);
``key1:alice,bob;key2:acme-*;key3:*`` binds each key to users: an exact id, a tenant prefix ending in ``*``,
or ``*`` for all. ``RECAGENT_API_KEYS_FILE`` names a JSON file ``{"key1": ["alice", "acme-*"], "key2": "*"}``
read at start-up, for keys that should not sit in the environment. A key may only read, erase, post events
for, or get recommendations as the users it is bound to; anonymous requests (no user) are open to every key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from recagent.agent import Settings

from ..errors import APIKeyError


class KeyGrant(BaseModel):
    """One key and the users it may act for."""

    key: str = Field(min_length=1, repr=False)
    users: tuple[str, ...] = ("*",)

    @field_validator("users")
    @classmethod
    def _non_empty(cls, users: tuple[str, ...]) -> tuple[str, ...]:
        users = tuple(u.strip() for u in users if u.strip())
        if not users:
            raise ValueError("a key must be bound to at least one user, tenant prefix or '*'")
        return users

    @property
    def everyone(self) -> bool:
        return "*" in self.users

    def allows(self, user_id: str | None) -> bool:
        """May this key act for ``user_id``? ``None`` (an anonymous request) is always allowed."""
        if user_id is None or self.everyone:
            return True
        for pattern in self.users:
            if pattern.endswith("*") and user_id.startswith(pattern[:-1]):
                return True
            if pattern == user_id:
                return True
        return False

    def session_scope(self, user_id: str | None, session_id: str | None) -> str | None:
        """The session id the pipeline sees. A user's sessions are already theirs (memory is keyed by user);
        an anonymous session is prefixed with the key's fingerprint so two keys never share one."""
        if session_id is None or user_id is not None:
            return session_id
        return f"anon-{hashlib.sha256(self.key.encode()).hexdigest()[:12]}:{session_id}"


OPEN_GRANT = KeyGrant(key="-", users=("*",))


def parse_api_keys(spec: str) -> list[KeyGrant]:
    """``k1,k2`` (every user) or ``k1:u1,u2;k2:tenant-*;k3:*`` (bound), see the module docstring."""
    spec = spec.strip()
    if not spec:
        return []
    if ":" not in spec and ";" not in spec:
        return [KeyGrant(key=k.strip()) for k in spec.split(",") if k.strip()]
    grants = []
    for n, entry in enumerate(e.strip() for e in spec.split(";")):
        if not entry:
            continue
        key, sep, users = entry.partition(":")
        try:
            grants.append(KeyGrant(key=key.strip(), users=tuple(users.split(",")) if sep else ("*",)))
        except ValidationError as exc:
            raise APIKeyError(
                f"RECAGENT_API_KEYS entry {n + 1}: {exc.errors()[0]['msg']} (form: key:user1,user2;key2:*)"
            ) from None
    _no_duplicates(grants)
    return grants


def load_api_keys_file(path: str | Path) -> list[KeyGrant]:
    """A JSON object ``{"key": ["user", "tenant-*"] or "*"}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise APIKeyError(f"{path}: cannot read the API key file ({exc})") from None
    if not isinstance(data, dict):
        raise APIKeyError(f'{path}: expected a JSON object {{"key": ["user", ...] or "*"}}')
    grants = []
    for key, users in data.items():
        if isinstance(users, str):
            users = [users]
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise APIKeyError(f"{path}: the users of a key must be a list of strings or '*'")
        try:
            grants.append(KeyGrant(key=key, users=tuple(users)))
        except ValidationError as exc:
            raise APIKeyError(f"{path}: {exc.errors()[0]['msg']}") from None
    _no_duplicates(grants)
    return grants


def _no_duplicates(grants: list[KeyGrant]) -> None:
    keys = [g.key for g in grants]
    if len(keys) != len(set(keys)):
        raise APIKeyError("an API key is listed twice; bind each key once")


def find_grant(grants: list[KeyGrant], token: bytes) -> KeyGrant | None:
    """The grant whose key equals ``token``, compared in constant time against every key."""
    found = None
    for grant in grants:
        if hmac.compare_digest(token, grant.key.encode()):
            found = grant
    return found


def configured_grants(settings: Settings) -> list[KeyGrant]:
    """The keys of ``RECAGENT_API_KEYS`` plus those of ``RECAGENT_API_KEYS_FILE`` (empty: no auth)."""
    grants = parse_api_keys(settings.api_keys.get_secret_value())
    if settings.api_keys_file is not None:
        grants += load_api_keys_file(settings.api_keys_file)
    return grants
