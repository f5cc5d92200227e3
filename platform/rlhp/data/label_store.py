"""Label store: append-only, durable, readable as one Arrow table, resumable after a crash.

On disk, a directory of Arrow IPC *stream* files of ``label_schema()``:

- ``active.arrows``: the file being appended to. Each ``append`` writes one record batch
  message and fsyncs before returning, so a returned (acknowledged) label survives a kill
  or a power loss. A crash mid-write leaves at most a torn last message, which reopening
  cuts off (that label was never acknowledged).
- ``labels-NNNNNNNN.arrows``: sealed files. Rotation renames ``active.arrows`` to the next
  sealed name (one atomic rename, then a directory fsync) and starts a new active file the
  same way (written aside, renamed in), so every label is in exactly one file at all times.
- ``.writer.lock``: an ``flock`` held by the one ``LabelStore`` writing the directory
  (POSIX; the kernel releases it when the process dies). Readers use ``read_labels``.
"""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from rlhp.data._durable import fsync_dir, remove_stale_tmp, write_atomic
from rlhp.data.errors import DuplicateLabelError, InvalidPreferenceError, SchemaMismatchError
from rlhp.data.records import VALID_PREFERENCES, LabelRecord
from rlhp.data.schemas import check_schema, label_schema, labels_to_batch
from rlhp.errors import ConfigError

ACTIVE_NAME = "active.arrows"
_SEALED_GLOB = "labels-*.arrows"


def validate_labels(labels: Sequence[LabelRecord], known_ids: frozenset[str] | set[str]) -> None:
    """Raise a clear error for the first label that cannot be stored; write nothing.

    Checks: preference in {0.0, 0.5, 1.0} or None ("can't tell"); non-empty, new and
    distinct label ids; two different segment ids per label; non-empty provenance fields.
    """
    seen: set[str] = set()
    for label in labels:
        where = f"label {label.label_id!r}"
        p = label.preference
        if p is not None and (
            isinstance(p, bool)
            or not isinstance(p, int | float)
            or math.isnan(p)
            or float(p) not in VALID_PREFERENCES
        ):
            raise InvalidPreferenceError(
                f"{where}: preference={p!r}; use 1.0 (left better), 0.0 (right better), "
                "0.5 (equally good) or None (can't tell)"
            )
        if not label.label_id:
            raise ConfigError("label.label_id: empty; give every label a unique id")
        if label.label_id in known_ids or label.label_id in seen:
            raise DuplicateLabelError(
                f"{where}: label_id already stored; labels are append-only, use a new id"
            )
        seen.add(label.label_id)
        if not label.left or not label.right or label.left == label.right:
            raise ConfigError(
                f"{where}: left={label.left!r}, right={label.right!r}; a label compares two "
                "different segment ids"
            )
        for name in ("source", "labeler", "query_strategy"):
            if not getattr(label, name):
                raise ConfigError(f"{where}: field {name!r} is empty; record who asked/answered")


def _read_stream_prefix(path: Path) -> tuple[pa.Schema, list[pa.RecordBatch], int]:
    """Schema, complete batches, and byte length of the valid prefix of a stream file.

    Raises SchemaMismatchError if the file does not start with an Arrow schema message.
    """
    stream = pa.input_stream(pa.py_buffer(path.read_bytes()))  # a copy: the file may shrink
    try:
        schema = pa.ipc.read_schema(pa.ipc.read_message(stream))
    except (pa.ArrowInvalid, OSError, EOFError) as e:
        raise SchemaMismatchError(
            f"{path}: not an Arrow IPC stream of labels ({e}); move it out of the label directory"
        ) from e
    good = stream.tell()
    batches: list[pa.RecordBatch] = []
    while True:
        try:
            message = pa.ipc.read_message(stream)
            if message.type != "record batch":
                break
            batch = pa.ipc.read_record_batch(message, schema)
        except EOFError:
            break
        except (pa.ArrowInvalid, OSError):  # torn tail: a write cut by a crash
            break
        batches.append(batch)
        good = stream.tell()
    return schema, batches, good


def read_labels(directory: str | Path) -> pa.Table:
    """All labels in ``directory`` as one table, without modifying anything.

    Safe while a writer appends in another process: a torn last message is ignored.
    """
    directory = Path(directory)
    for attempt in range(3):
        batches: list[pa.RecordBatch] = []
        try:
            for path in _label_files(directory):
                schema, file_batches, _ = _read_stream_prefix(path)
                check_schema(schema, label_schema(), str(path))
                batches += file_batches
        except FileNotFoundError:  # the writer rotated a file between listing and reading
            if attempt == 2:
                raise
            continue
        break
    return pa.Table.from_batches(batches, schema=label_schema())


def _label_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob(_SEALED_GLOB))
    active = directory / ACTIVE_NAME
    return [*files, active] if active.exists() else files


def _lock_directory(directory: Path) -> BinaryIO:
    """Take the single-writer lock of ``directory`` (released when the process dies)."""
    lock = open(directory / ".writer.lock", "ab")  # noqa: SIM115 - held for the store's life
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(
            f"label_store: another LabelStore is open for writing on {directory}; one writer "
            "per directory (use read_labels() to read while it writes)"
        ) from None
    return lock


class LabelStore:
    """Append-only durable store of labels in ``directory``.

    Args:
        directory: created if missing; an existing one is resumed (torn tail cut off).
        rotate_every: labels per file before the active file is sealed (count).

    One process appends at a time (the label actor); any number may ``read_labels``.
    """

    def __init__(self, directory: str | Path, rotate_every: int = 10_000) -> None:
        if rotate_every < 1:
            raise ConfigError(f"label_store.rotate_every: must be >= 1, got {rotate_every}")
        self.directory = Path(directory)
        self.rotate_every = rotate_every
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_directory(self.directory)
        self._schema = label_schema()
        self._batches: list[pa.RecordBatch] = []
        self._ids: set[str] = set()
        self._active_rows = 0
        try:
            self._open()
        except BaseException:
            self._lock.close()  # refuse to open, but do not keep the directory locked
            raise

    # -- opening and recovery ----------------------------------------------------------

    def _open(self) -> None:
        files = _label_files(self.directory)
        parsed = []
        for path in files:  # read and check everything before touching anything
            schema, batches, good = _read_stream_prefix(path)
            check_schema(schema, self._schema, str(path))
            parsed.append((path, batches, good))
        remove_stale_tmp(self.directory)
        sealed = sorted(self.directory.glob(_SEALED_GLOB))
        self._next_seal = int(sealed[-1].stem.split("-")[1]) + 1 if sealed else 0
        for path, batches, good in parsed:
            self._batches += batches
            for batch in batches:
                self._ids.update(batch.column("label_id").to_pylist())
            if path.name == ACTIVE_NAME:
                self._active_rows = sum(b.num_rows for b in batches)
                if path.stat().st_size > good:  # cut the torn tail of an unacknowledged write
                    os.truncate(path, good)
                    with open(path, "rb+") as f:
                        os.fsync(f.fileno())
        active = self.directory / ACTIVE_NAME
        if not active.exists():
            self._new_active()
        self._file = open(active, "ab", buffering=0)  # noqa: SIM115 - held open for appends

    def _new_active(self) -> None:
        write_atomic(self.directory / ACTIVE_NAME, self._schema.serialize().to_pybytes())
        self._active_rows = 0

    # -- API ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, label_id: object) -> bool:
        return label_id in self._ids

    @property
    def label_ids(self) -> frozenset[str]:
        """Ids of every stored label."""
        return frozenset(self._ids)

    def append(self, labels: Sequence[LabelRecord]) -> list[str]:
        """Store ``labels`` durably; return their ids once they are on disk (the ack).

        Everything is validated first (``validate_labels``): a bad label raises and nothing
        is written. A failed write is rolled back to the previous file length.
        """
        validate_labels(labels, self._ids)
        if not labels:
            return []
        batch = labels_to_batch(labels)
        message = batch.serialize().to_pybytes()
        size_before = os.fstat(self._file.fileno()).st_size
        try:
            written = 0
            while written < len(message):
                written += os.write(self._file.fileno(), message[written:])
            os.fsync(self._file.fileno())
        except BaseException:
            os.ftruncate(self._file.fileno(), size_before)
            raise
        self._batches.append(batch)
        ids = [label.label_id for label in labels]
        self._ids.update(ids)
        self._active_rows += batch.num_rows
        if self._active_rows >= self.rotate_every:
            self._rotate()
        return ids

    def _rotate(self) -> None:
        """Seal the active file under the next sealed name and start a new active file."""
        self._file.close()
        sealed = self.directory / f"labels-{self._next_seal:08d}.arrows"
        os.replace(self.directory / ACTIVE_NAME, sealed)
        fsync_dir(self.directory)
        self._next_seal += 1
        self._new_active()
        self._file = open(self.directory / ACTIVE_NAME, "ab", buffering=0)  # noqa: SIM115

    def table(self) -> pa.Table:
        """Every stored label, in append order, as one Arrow table."""
        return pa.Table.from_batches(self._batches, schema=self._schema)

    def close(self) -> None:
        """Close the active file and release the writer lock (labels are already durable)."""
        if not self._file.closed:
            self._file.close()
        if not self._lock.closed:
            self._lock.close()  # closing the descriptor releases the flock

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
