"""User profiles: the schema (``profile``), how they are built from events and texts (``profile_builder``,
``extraction`` with its ``vocabulary``) and where they are kept (``store``). The public names are re-exported
from ``recagent.agent``."""

from __future__ import annotations
