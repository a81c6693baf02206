"""The retrieval query: a user's profile and conversation (text space) and their sequence state (behaviour)."""

from __future__ import annotations

import numpy as np

from recagent.retrieval import (
    Encoder,
    ImageError,
    ItemIndex,
    SequentialIndex,
    SequentialModel,
    UnknownUserError,
    unit_vector,
)

from .privacy import Redactor
from .profiles.profile import UserProfile


class QueryBuilder:
    """Builds the query vector :class:`Recommender` searches with; evaluation and index tuning use the same one."""

    # How the query vector mixes its parts (each a unit vector, the sum renormalised):
    #   q = long_term_weight·long-term (rated history) + short_term_weight·short-term (this conversation's turns,
    #       latest weighted most) − negative_weight·negative (disliked items) − avoid_weight·avoid (what the
    #       conversation said not to want, e.g. "not another superhero movie").
    # The short-term part outweighs the long-term one so that what the user asks for now wins, while the
    # long-term part keeps the picks personal; hard constraints are not mixed in but filter retrieval.
    # Without a session (a caller passing only a query) the encoded query takes the short-term slot.
    request_weight = 1.0
    # With a behaviour state in the query, SASRec's logits spread over a few units while text similarities
    # move by tenths: a request ("something funny from the 90s") needs this much more weight to steer. It is
    # not tuned offline (no conversational test set); filters and stated constraints are exact regardless.
    conversation_text_scale = 8.0
    negative_weight = 0.3
    long_term_weight = 1.0
    short_term_weight = 1.5
    avoid_weight = 0.5
    # A photo the user sent ("more like this") stands in the image block at this scale when a behaviour state is
    # in the query, for the same reason as conversation_text_scale; without one, at 1. The image taste (the
    # mean image of the liked items) always counts once. Not tuned offline either.
    photo_scale = 8.0

    def __init__(
        self,
        index: ItemIndex,
        encoder: Encoder | None,
        redactor: Redactor,
        sequence: SequentialModel | None = None,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.redactor = redactor
        self.sequence = sequence

    def text_part(self, profile: UserProfile, query: str | None) -> np.ndarray | None:
        """long-term + 1.5·short-term − 0.3·negative − 0.5·avoid in text space, renormalised (class attributes)."""
        parts: list[np.ndarray] = []
        if profile.vector is not None:
            parts.append(self.long_term_weight * np.asarray(profile.vector, dtype=np.float32))
        if profile.short_term_vector is not None:
            parts.append(self.short_term_weight * np.asarray(profile.short_term_vector, dtype=np.float32))
        elif query and self.encoder is not None:
            parts.append(self.request_weight * self.encoder.encode_one(self.redactor(query)))
        if not parts:
            return None
        vec = np.sum(parts, axis=0)
        if profile.negative_vector is not None:
            vec = vec - self.negative_weight * np.asarray(profile.negative_vector, dtype=np.float32)
        avoid = profile.session.avoid_vector if profile.session is not None else None
        if avoid is not None:
            vec = vec - self.avoid_weight * np.asarray(avoid, dtype=np.float32)
        unit = unit_vector(vec)
        return (vec if unit is None else unit).astype(np.float32)

    def sequence_state(self, profile: UserProfile) -> np.ndarray | None:
        """SASRec's state after the user's events in order (``profile.seen``: updated with every event)."""
        if self.sequence is None or not profile.seen:
            return None
        positions = self.sequence.positions(profile.seen)
        return self.sequence.state(positions) if positions else None

    def collab_part(self, profile: UserProfile) -> np.ndarray | None:
        """The item2vec part (where the index has one): a recency-weighted mean of the user's last items."""
        if not isinstance(self.index, SequentialIndex) or not profile.seen:
            return None
        catalog = self.index.catalog
        return self.index.collab_query([catalog.position(i) for i in profile.seen if i in catalog])

    def require_images(self) -> None:
        """Raise :class:`ImageError` (422 at the API) when this index has no image block to match a photo in."""
        if self.index.image_vectors is None:
            raise ImageError(
                "this catalogue has no item images, so a photo cannot be matched; describe it in words"
            )

    def image_part(self, profile: UserProfile, photo: np.ndarray | None = None) -> np.ndarray | None:
        """The image block's query (where the index has one): the photo sent, else the user's image taste, the
        unit mean image vector of the items they liked (None when none of them has an image)."""
        if self.index.image_vectors is None:
            return None
        if photo is not None:
            return np.asarray(photo, dtype=np.float32)
        return self.index.image_taste([rated.item_id for rated in profile.liked])

    def query_vector(
        self, profile: UserProfile, query: str | None, photo: np.ndarray | None = None
    ) -> np.ndarray:
        """The query in the index's space: the text part (profile, conversation) and, where the index fuses
        behaviour, the sequence state and the collaborative part, and where it fuses images the photo or the
        image taste. In a conversation the text part counts ``conversation_text_scale`` times more, so what the
        user asks for now can outweigh their habits; a photo counts ``photo_scale`` times more for the same reason."""
        if photo is not None:
            self.require_images()
        text = self.text_part(profile, query)
        state = self.sequence_state(profile)
        if text is None and state is None and photo is None:
            raise UnknownUserError(
                f"user {profile.user_id!r} has no history yet; say what you are looking for"
            )
        talking = profile.short_term_vector is not None or bool(query)
        scale = self.conversation_text_scale if talking and state is not None else 1.0
        image = self.image_part(profile, photo)
        image_scale = self.photo_scale if photo is not None and state is not None else 1.0
        return self.index.query(text, state, scale, self.collab_part(profile), image, image_scale).astype(
            np.float32
        )
