"""Conversation memory: each user turn updates the session part of the profile.

A turn is redacted, then read for stated constraints (deterministic rules, so "no horror" can never be
misread by a model): negated genres become hard ``exclude_genre``; "only comedies" a hard ``include_genre``;
decades and "after/before YEAR" hard year bounds; "under $50" a hard ``price_max``; a wanted genre
("something funny") a soft ``mood``; a negated non-genre phrase ("not another superhero movie") a soft
``avoid``. What remains of the turn once negated phrases are cut out is embedded into the short-term vector;
the avoided phrases into the session's avoid vector.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from recagent.retrieval import unit_vector

from .privacy import DEFAULT_REDACTOR, Redactor
from .profiles.profile import Constraint, Evidence, Interest, SessionMemory, UserProfile, constraints_filter
from .prompts import clean

if TYPE_CHECKING:
    from .profiles.extraction import FastExtractor

# Words users say for MovieLens genres; only genres present in the catalogue are used.
GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    "Comedy": ("comedy", "comedies", "funny", "hilarious", "humorous", "lighthearted", "light-hearted"),
    "Horror": ("horror", "horrors", "scary", "slasher", "slashers", "gore"),
    "Romance": ("romance", "romances", "romantic", "rom-com", "romcom", "love story"),
    "Action": ("action",),
    "Sci-Fi": ("sci-fi", "scifi", "science fiction", "science-fiction"),
    "Drama": ("drama", "dramas"),
    "Thriller": ("thriller", "thrillers", "suspense"),
    "Animation": ("animation", "animated", "cartoon", "cartoons"),
    "Children's": ("children's", "kids", "family film", "family movie"),
    "Documentary": ("documentary", "documentaries"),
    "Crime": ("crime", "gangster", "gangsters"),
    "War": ("war",),
    "Musical": ("musical", "musicals"),
    "Western": ("western", "westerns"),
    "Mystery": ("mystery", "mysteries", "whodunit"),
    "Fantasy": ("fantasy",),
    "Adventure": ("adventure", "adventures"),
    "Film-Noir": ("film-noir", "film noir", "noir"),
}

_NEG = r"(?:no|not|never|without|nothing|avoid|skip|hate|no more|none of|anything but|don't want|do not want|except)"
_FILLER = r"(?:\s+(?:another|any|more|a|an|the|of|those|these|that|too|much|really|very|some|scary|sad))*"
_DECADE = re.compile(
    r"\b(?:the\s+)?(?:(19|20)(\d)0\s*'?s|'?(\d)0\s*'?s|(twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties))\b",
    re.IGNORECASE,
)
_WORD_DECADES = {
    "twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950,
    "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990,
}  # fmt: skip
_AFTER = re.compile(
    r"\b(after|since|newer than|from)\s+(?:the\s+year\s+)?((?:19|20)\d\d)\b(?!\s*'?s)", re.IGNORECASE
)
_BEFORE = re.compile(r"\b(before|older than|until|up to|pre-?)\s*((?:19|20)\d\d)\b(?!\s*'?s)", re.IGNORECASE)
_IN_YEAR = re.compile(r"\b(?:in|of)\s+((?:19|20)\d\d)\b(?!\s*'?s)", re.IGNORECASE)
_PRICE = re.compile(
    r"\b(?:under|below|less than|cheaper than|max(?:imum)?)\s*(?:\$|€|£)?\s*(\d+(?:\.\d+)?)", re.IGNORECASE
)
_AVOID = re.compile(
    rf"\b{_NEG}{_FILLER}\s+([a-z][a-z'-]*(?:\s+[a-z][a-z'-]*){{0,3}}?)(?=\s*(?:[,.;!?]|$|\band\b|\bor\b|\bbut\b|\bplease\b))",
    re.IGNORECASE,
)
_ONLY = re.compile(r"\b(?:only|just|strictly)\s+", re.IGNORECASE)


def _decade_start(match: re.Match[str]) -> int:
    century, tens, short, word = match.groups()
    if word:
        return _WORD_DECADES[word.lower()]
    if century:
        return int(century) * 100 + int(tens) * 10
    digit = int(short)
    return (1900 if digit >= 2 else 2000) + digit * 10


def _alias_pattern(aliases: Sequence[str]) -> str:
    return (
        r"(?<![\w-])(?:"
        + "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True))
        + r")(?![\w-])"
    )


def parse_constraints(
    text: str, genres: Sequence[str], source_id: str | None = None
) -> tuple[list[Constraint], list[str], str]:
    """(constraints, avoided phrases, the text with negated phrases cut out) for one user turn."""
    known = {g.lower(): g for g in genres}
    found: list[Constraint] = []
    remainder = text
    clauses_ = re.split(r"[,.;!?]|\bbut\b", text)

    def add(kind: str, field: str, value: str | int | float, quote: str) -> None:
        c = Constraint(kind=kind, field=field, value=value, quote=clean(quote, 300), source_id=source_id)  # type: ignore[arg-type]
        if c not in found:
            found.append(c)

    for genre, aliases in GENRE_ALIASES.items():
        if genre.lower() not in known:
            continue
        genre = known[genre.lower()]
        pattern = _alias_pattern(aliases)
        for clause in clauses_:
            for match in re.finditer(pattern, clause, re.IGNORECASE):
                before = clause[: match.start()]
                if re.search(rf"\b{_NEG}\b{_FILLER}\s*$", before, re.IGNORECASE) or re.search(
                    rf"\b{_NEG}\b", before, re.IGNORECASE
                ):
                    add("hard", "exclude_genre", genre, clause.strip())
                    remainder = remainder.replace(clause, " ")
                elif _ONLY.search(before[-12:]):
                    add("hard", "include_genre", genre, clause.strip())
                else:
                    add("soft", "mood", genre, clause.strip())
    avoided: list[str] = []
    for match in _AVOID.finditer(text):
        phrase = match.group(1).strip()
        if any(re.fullmatch(_alias_pattern(a), phrase, re.IGNORECASE) for a in GENRE_ALIASES.values()):
            continue
        if any(re.search(_alias_pattern(a), phrase, re.IGNORECASE) for a in GENRE_ALIASES.values()):
            continue
        avoided.append(phrase)
        add("soft", "avoid", phrase, match.group(0))
        remainder = remainder.replace(match.group(0), " ")
    for match in _DECADE.finditer(text):
        start = _decade_start(match)
        add("hard", "year_min", start, match.group(0))
        add("hard", "year_max", start + 9, match.group(0))
    for match in _AFTER.finditer(text):
        year = int(match.group(2))
        add(
            "hard",
            "year_min",
            year + 1 if match.group(1).lower() in ("after", "newer than") else year,
            match.group(0),
        )
    for match in _BEFORE.finditer(text):
        year = int(match.group(2))
        add(
            "hard",
            "year_max",
            year if match.group(1).lower() in ("until", "up to") else year - 1,
            match.group(0),
        )
    for match in _IN_YEAR.finditer(text):
        year = int(match.group(1))
        add("hard", "year_min", year, match.group(0))
        add("hard", "year_max", year, match.group(0))
    for match in _PRICE.finditer(text):
        add("hard", "price_max", float(match.group(1)), match.group(0))
    remainder = " ".join(re.sub(r"\s*,\s*(,\s*)*", ", ", remainder).strip(" ,").split())
    return found, avoided, remainder


def _merge_constraints(old: list[Constraint], new: list[Constraint]) -> list[Constraint]:
    """Later turns win: a new year bound replaces the old one; a genre said again flips its old state."""
    replaced_fields = {c.field for c in new if c.field in ("year_min", "year_max", "price_max")}
    new_genres = {str(c.value).lower() for c in new if c.field in ("exclude_genre", "include_genre", "mood")}
    kept = [
        c
        for c in old
        if c.field not in replaced_fields
        and not (c.field in ("exclude_genre", "include_genre", "mood") and str(c.value).lower() in new_genres)
    ]
    return [*kept, *new]


class ConversationMemory:
    """Per-session memory. The short-term vector is an exponential moving average of the turns' embeddings,
    each older turn counting ``decay`` times the next one, so the latest message dominates."""

    def __init__(
        self,
        extractor: FastExtractor,
        genres: Sequence[str],
        decay: float = 0.5,
        max_sessions: int = 10_000,
        redactor: Redactor | None = None,
    ):
        self.extractor = extractor
        self.redactor = redactor or DEFAULT_REDACTOR
        self.genres = list(genres)
        self.decay = decay
        self.max_sessions = max_sessions
        # Keyed by (owner, session id): a session id is chosen by the client, so the same id sent for
        # another user names a different session and can neither read nor reset the first one.
        self._sessions: dict[tuple[str | None, str], SessionMemory] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, owner: str | None = None) -> SessionMemory | None:
        return self._sessions.get((owner, session_id))

    def observe(self, session: SessionMemory, text: str, turn_id: str | None = None) -> SessionMemory:
        """The session after one more user turn; ``text`` is redacted before anything else sees it."""
        text = self.redactor(text)
        turn_id = turn_id or f"{session.session_id}#{len(session.turns) + 1}"
        constraints, avoided, remainder = parse_constraints(text, self.genres, turn_id)
        parts = [p for p in (remainder, *avoided) if p]
        vectors = self.extractor.embed(parts) if parts else np.zeros((0, 1), np.float32)
        short = session.short_term_vector
        if remainder:
            old = np.zeros_like(vectors[0]) if short is None else np.asarray(short, np.float32) * self.decay
            mixed = unit_vector(old + vectors[0])
            short = None if mixed is None else mixed.tolist()
        avoid = session.avoid_vector
        for vec in vectors[1 if remainder else 0 :]:
            old = np.zeros_like(vec) if avoid is None else np.asarray(avoid, np.float32)
            mixed = unit_vector(old + vec)
            avoid = None if mixed is None else mixed.tolist()
        interests = list(session.interests)
        for c in constraints:
            if c.field in ("mood", "exclude_genre", "include_genre"):
                weight = -0.8 if c.field == "exclude_genre" else 0.6
                interests = [i for i in interests if i.tag.lower() != str(c.value).lower()]
                interests.append(
                    Interest(
                        tag=str(c.value),
                        weight=weight,
                        confidence=0.6 if c.kind == "hard" else 0.4,
                        evidence=[],
                        extractor="fast",
                    )
                )
                interests[-1].evidence.append(
                    Evidence(
                        source="chat",
                        text=f'you said "{c.quote}"',
                        quote=c.quote,
                        source_id=turn_id,
                        extractor="fast",
                        weight=weight,
                    )
                )
        return session.model_copy(
            update={
                "turns": [*session.turns, text],
                "short_term_vector": short,
                "avoid_vector": avoid,
                "constraints": _merge_constraints(session.constraints, constraints),
                "interests": interests,
            }
        )

    def update(self, session_id: str, turns: Sequence[str], owner: str | None = None) -> SessionMemory:
        """Bring a session up to date with the conversation's user turns (oldest first).

        Callers may send the whole conversation every time (turns already seen are not read again) or only
        the latest message; a history that contradicts the remembered one starts the session over.
        """
        key = (owner, session_id)
        with self._lock:
            session = self._sessions.get(key) or SessionMemory(session_id=session_id)
            redacted = [self.redactor(t) for t in turns]
            if session.turns == redacted[: len(session.turns)]:
                fresh = list(turns[len(session.turns) :])  # the whole conversation was sent again
            elif len(turns) == 1:
                fresh = list(turns)  # only the latest message was sent: it follows what is remembered
            else:
                session, fresh = (
                    SessionMemory(session_id=session_id),
                    list(turns),
                )  # edited history: start over
            for text in fresh:
                session = self.observe(session, text, f"{session_id}#{len(session.turns) + 1}")
            if len(self._sessions) >= self.max_sessions and key not in self._sessions:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[key] = session
            return session

    def transient(self, turns: Sequence[str], session_id: str = "request") -> SessionMemory:
        """A session built from the turns alone and not remembered (requests without a session id)."""
        session = SessionMemory(session_id=session_id)
        for pos, text in enumerate(turns):
            session = self.observe(session, text, f"{session_id}#{pos + 1}")
        return session

    def forget_owner(self, owner: str) -> int:
        with self._lock:
            gone = [key for key in self._sessions if key[0] == owner]
            for key in gone:
                del self._sessions[key]
            return len(gone)


def with_session(profile: UserProfile, session: SessionMemory) -> UserProfile:
    """A copy of the profile carrying the session part; the cached long-term profile is not touched."""
    return profile.model_copy(update={"session": session, "short_term_vector": session.short_term_vector})


__all__ = ["ConversationMemory", "GENRE_ALIASES", "constraints_filter", "parse_constraints", "with_session"]
