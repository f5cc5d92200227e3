"""Errors of the data layer. Each names the offending field and the fix.

All but one derive from ``rlhp.errors.ConfigError`` (a ``ValueError``) because each is bad
input: a caller passed a label, a record or a directory that does not fit. None of them is
raised after anything was written: a store that raises is left as it was. The exception is
``CorruptLabelsError``: damage found on disk, reported once the damaged file is quarantined.
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


class CorruptLabelsError(Exception):
    """A label file is damaged somewhere other than a torn tail (the unfinished last append
    of the active file). Not bad input, so not a ConfigError: the disk or something else
    changed bytes that were acknowledged. The message names the file and the byte offset,
    and says where the damaged file was moved (the writer quarantines it) or how to do so.
    """
