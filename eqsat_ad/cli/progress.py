"""The command line's progress line: :class:`eqsat_ad.progress.Progress` (kept here for old
imports)."""
from __future__ import annotations

from ..progress import Progress, counter, track  # noqa: F401

__all__ = ["Progress", "counter", "track"]
