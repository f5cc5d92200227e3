"""Errors of the data layer. Each names the offending field and the fix.

All derive from ``rlhp.errors.ConfigError`` (a ``ValueError``) because each is bad input:
a caller passed a label, a record or a directory that does not fit. None of them is raised
after anything was written: a store that raises is left as it was.
"""

from __future__ import annotations

from rlhp.errors import ConfigError


class UnknownSegmentError(ConfigError):
    """A label names a segment id the segment store has never held (or has evicted unpinned)."""


class InvalidPreferenceError(ConfigError):
    """A preference outside {0.0, 0.5, 1.0} (or None, "can't tell")."""


class DuplicateLabelError(ConfigError):
    """A label id that the label store already holds."""


class SchemaMismatchError(ConfigError):
    """Data on disk or a record does not match the expected Arrow schema."""


class DuplicateSegmentError(ConfigError):
    """A segment id that the segment store already holds (ids must be unique in a run)."""
