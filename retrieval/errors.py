"""Every error recagent raises derives from :class:`RecagentError` (cf. ``rectools/exceptions.py``).

The retrieval layer defines the base and the data errors; ``recagent.agent.errors`` adds the model errors.
Faces map them to exit codes and HTTP statuses in one place each (``ui/cli``, ``ui/api/server.py``).
"""

from __future__ import annotations


class RecagentError(Exception):
    """Base of recagent's own errors: the message is meant for the person who made the request."""

    def __str__(self) -> str:
        # KeyError's str() wraps the message in quotes; every recagent error prints its message plainly.
        return str(self.args[0]) if self.args else self.__class__.__doc__ or ""


class DataFileError(RecagentError, ValueError):
    """A user-supplied data file is malformed; the message names the file, row and field."""


class IndexFileError(DataFileError):
    """An index folder is missing, corrupt, or was built with another encoder."""


class UnknownItemError(RecagentError, KeyError):
    """An item id that is not in the catalogue."""


class UnknownUserError(RecagentError, KeyError):
    """A user with no history when the request gives nothing else to go on."""


class ImageError(DataFileError):
    """An image that cannot be used: missing, not an image, too large, or remote while fetching is off."""
