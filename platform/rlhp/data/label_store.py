"""Label store: append-only, durable, readable as one Arrow table, resumable after a crash.

On disk, a directory of Arrow IPC *stream* files of ``label_schema()`` (format and checksums:
``rlhp.data.label_log``):

- ``active.arrows``: the file being appended to. Each ``append`` writes one record-batch
  message (with its CRC-32) and fsyncs before returning, so a returned (acknowledged) label
  survives a kill or a power loss. A crash mid-write leaves at most a torn last message,
  which reopening cuts off (that label was never acknowledged).
- ``labels-NNNNNNNN.arrows``: sealed files, never written again. Rotation prepares the next
  active file aside (``active.arrows.tmp``, fsynced), renames ``active.arrows`` to the next
  sealed name, renames the new file in and fsyncs the directory, so every label is in exactly
  one file at all times. A rotation that fails (ENOSPC, EIO) changes no answer: the labels are
  already stored, appends go on into the current file and the rotation is tried again after
  the next append; ``health()`` says so meanwhile.
- ``quarantine/``: damaged files moved aside by the writer (see ``LabelStore``), never read.
- ``.writer.lock``: an ``flock`` held by the one ``LabelStore`` writing the directory
  (POSIX; the kernel releases it when the process dies). Readers use ``read_labels``.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from rlhp.data._durable import (
    TMP_SUFFIX,
    fsync_dir,
    remove_stale_tmp,
    unlink_quietly,
    write_all,
    write_atomic,
    write_synced,
)
from rlhp.data.errors import CorruptLabelsError, DuplicateLabelError, InvalidPreferenceError
from rlhp.data.label_log import LabelFileScan, encode_batch, file_header, scan_label_file
from rlhp.data.records import VALID_PREFERENCES, LabelRecord
from rlhp.data.schemas import check_schema, label_schema, labels_to_batch
from rlhp.errors import ConfigError

ACTIVE_NAME = "active.arrows"
QUARANTINE_NAME = "quarantine"
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


# -- reading ---------------------------------------------------------------------------


def read_labels(directory: str | Path) -> pa.Table:
    """All labels in ``directory`` as one table, without modifying anything.

    Safe while a writer appends and rotates in another process: the table holds every label
    acknowledged before the call, each once, as a prefix of the append order (see
    ``_snapshot``). A torn tail of the active file (an append in progress) is left out; any
    other damage raises CorruptLabelsError naming the file and the byte offset.
    """
    directory = Path(directory)
    schema = label_schema()
    batches: list[pa.RecordBatch] = []
    for path, data, is_active in _snapshot(directory):
        scan = scan_label_file(data, path, schema)
        check_schema(scan.schema, schema, str(path))
        if scan.damage and not (is_active and scan.torn_tail):
            raise CorruptLabelsError(
                _damage_report(path, scan)
                + "; open the directory with LabelStore (the writer) to quarantine the file "
                "and keep its intact labels"
            )
        batches += scan.batches
    return pa.Table.from_batches(batches, schema=schema)


def _snapshot(directory: Path) -> list[tuple[Path, bytes, bool]]:
    """(path, bytes, is the active file) of every label file, consistent with a rotation.

    Lock-free: the active file is opened first and read last, the sealed files are listed
    and read in between. A rotation renames the active file to the next sealed name, so if
    the listing holds the file opened as active under a sealed name (same device and inode),
    it is read there, whole, and not again. Every label acknowledged before the call is then
    in a listed file or in the opened one, and a file newer than the opened one can only be
    listed if the opened one is too: no label is missed, none read twice, none skipped.
    """
    active_path = directory / ACTIVE_NAME
    try:
        fd: int | None = os.open(active_path, os.O_RDONLY)
    except FileNotFoundError:  # between two renames of a rotation: all labels are sealed
        fd = None
    try:
        active_id = _file_id(fd) if fd is not None else None
        files: list[tuple[Path, bytes, bool]] = []
        for path in sorted(directory.glob(_SEALED_GLOB)):
            with open(path, "rb") as f:
                if _file_id(f.fileno()) == active_id:
                    active_id = None  # sealed since it was opened: read it here, whole
                files.append((path, f.read(), False))
        if fd is not None and active_id is not None:
            with os.fdopen(os.dup(fd), "rb") as f:
                files.append((active_path, f.read(), True))
    finally:
        if fd is not None:
            os.close(fd)
    return files


def _file_id(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _damage_report(path: Path, scan: LabelFileScan) -> str:
    start, end = scan.damage[0]
    more = f" and {len(scan.damage) - 1} more place(s)" if len(scan.damage) > 1 else ""
    return (
        f"label file {path} is damaged at byte {start} ({end - start} bytes{more}; "
        f"{len(scan.spans)} intact messages, {scan.labels_in(end)} labels after the damage)"
    )


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


# -- writing ---------------------------------------------------------------------------


class LabelStore:
    """Append-only durable store of labels in ``directory``.

    Args:
        directory: created if missing; an existing one is resumed (torn tail cut off).
        rotate_every: labels per file before the active file is sealed (count).

    One process appends at a time (the label actor); any number may ``read_labels``.

    Opening checks every message's checksum. Damage other than a torn tail (in a sealed
    file, or with intact messages after it) is never cut silently: the damaged file is copied
    to ``quarantine/`` unchanged, rewritten in place with every intact message, and opening
    raises CorruptLabelsError once, naming the file and the offset. Opening again goes on
    with the intact labels.
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
        self._fd: int | None = None  # the active file, opened for appends (None: none yet)
        self._size = 0  # bytes of the active file that hold intact messages
        self._dir_unsynced = False  # a rename not yet made durable by a directory fsync
        self._append_error: str | None = None
        self._rotation_error: str | None = None
        try:
            self._open()
        except BaseException:
            self._lock.close()  # refuse to open, but do not keep the directory locked
            raise

    # -- opening and recovery ----------------------------------------------------------

    @property
    def _active(self) -> Path:
        return self.directory / ACTIVE_NAME

    def _open(self) -> None:
        sealed = sorted(self.directory.glob(_SEALED_GLOB))
        files = [*sealed, self._active] if self._active.exists() else sealed
        scans = []
        for path in files:  # read and check everything before touching anything
            data = path.read_bytes()
            scan = scan_label_file(data, path, self._schema)
            check_schema(scan.schema, self._schema, str(path))
            scans.append((path, data, scan))
        damaged = [
            (path, data, scan)
            for path, data, scan in scans
            if scan.damage and not (path == self._active and scan.torn_tail)
        ]
        if damaged:
            raise self._quarantine(damaged)
        remove_stale_tmp(self.directory)
        self._next_seal = int(sealed[-1].stem.split("-")[1]) + 1 if sealed else 0
        for path, _, scan in scans:
            self._batches += scan.batches
            for batch in scan.batches:
                self._ids.update(batch.column("label_id").to_pylist())
            if path == self._active:
                self._active_rows = sum(b.num_rows for b in scan.batches)
                if scan.size > scan.intact_end:  # cut the torn tail of an unacknowledged write
                    os.truncate(path, scan.intact_end)
                    with open(path, "rb+") as f:
                        os.fsync(f.fileno())
        if not self._active.exists():
            self._new_active()
        self._open_active()

    def _quarantine(self, damaged: list[tuple[Path, bytes, LabelFileScan]]) -> CorruptLabelsError:
        """Copy each damaged file to ``quarantine/`` unchanged, rewrite it with its intact
        messages, and return the one error to raise. Crash-safe in any order: until the
        rewrite, the damaged file is still in place and is found again on the next open."""
        where = self.directory / QUARANTINE_NAME
        where.mkdir(exist_ok=True)
        reports = []
        for path, data, scan in damaged:
            copy = where / f"{path.name}.{time.time_ns()}.damaged"
            write_atomic(copy, data)
            write_atomic(path, scan.salvage(data))
            reports.append(f"{_damage_report(path, scan)}: quarantined a copy as found in {copy}")
        return CorruptLabelsError(
            "; ".join(reports) + "; the damaged files now hold their intact labels only, the "
            "damaged ones cannot be recovered: open the store again to go on without them"
        )

    def _new_active(self) -> None:
        write_atomic(self._active, file_header(self._schema))
        self._active_rows = 0
        self._dir_unsynced = False

    def _open_active(self) -> None:
        self._fd = os.open(self._active, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

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
        is written. A failed write (ENOSPC, EIO) raises, and is rolled back to the previous
        file length; the next append tries again. Once the data is fsynced the labels are
        stored and this returns their ids, whatever happens to the rotation after it.
        """
        validate_labels(labels, self._ids)
        if not labels:
            return []
        batch = labels_to_batch(labels)
        message = encode_batch(batch)
        try:
            fd = self._writable()
            try:
                write_all(fd, message)
                os.fsync(fd)
            except BaseException:
                self._roll_back(fd)
                raise
        except OSError as err:
            self._append_error = f"appending to {self._active} failed: {err}"
            raise
        self._append_error = None
        self._size += len(message)
        self._batches.append(batch)
        ids = [label.label_id for label in labels]
        self._ids.update(ids)
        self._active_rows += batch.num_rows
        if self._active_rows >= self.rotate_every:
            self._try_rotate()
        return ids

    def _writable(self) -> int:
        """The active file's descriptor, after repairing what a failure left: no active file
        (a rotation stopped between its renames), a rename not yet durable, bytes of a failed
        write that could not be rolled back. Raises OSError if that repair fails."""
        if self._fd is None:
            self._new_active()
            self._open_active()
            self._rotation_error = None  # the rotation that stopped half way is complete
        assert self._fd is not None
        if self._dir_unsynced:  # before anything in the new file is acknowledged
            fsync_dir(self.directory)
            self._dir_unsynced, self._rotation_error = False, None
        if os.fstat(self._fd).st_size != self._size:
            os.ftruncate(self._fd, self._size)
        return self._fd

    def _roll_back(self, fd: int) -> None:
        with contextlib.suppress(OSError):  # if not, ``_writable`` truncates before the next append
            os.ftruncate(fd, self._size)

    def _try_rotate(self) -> None:
        """Rotate; on failure remember why (``health``) and retry after the next append."""
        try:
            self._rotate()
        except OSError as err:
            self._rotation_error = (
                f"rotating {self._active} failed ({err}); appends go on into the current "
                "file, the rotation is retried after the next append"
            )
        else:
            self._rotation_error = None

    def _rotate(self) -> None:
        """Seal the active file under the next sealed name and start a new active file.

        Each step that can fail leaves a state appends can go on from: the new file is
        prepared aside first (ENOSPC there changes nothing), the active file is renamed to
        its sealed name (a failure there changes nothing), then the new file is renamed in
        (a failure leaves no active file: the next append makes one) and the directory is
        fsynced (a failure is retried before the next append is acknowledged).
        """
        tmp = self._active.with_name(ACTIVE_NAME + TMP_SUFFIX)
        sealed = self.directory / f"labels-{self._next_seal:08d}.arrows"
        write_synced(tmp, file_header(self._schema))
        try:
            os.replace(self._active, sealed)
        except BaseException:
            unlink_quietly(tmp)
            raise
        self._next_seal += 1
        assert self._fd is not None
        os.close(self._fd)  # the sealed file is never written again
        self._fd, self._active_rows, self._dir_unsynced = None, 0, True
        os.replace(tmp, self._active)
        self._open_active()
        fsync_dir(self.directory)
        self._dir_unsynced = False

    def health(self) -> dict[str, Any]:
        """``{"ok", "writable", "problem"}``: ``writable`` is False while appends fail (the
        last one raised); ``problem`` says what is wrong (a failed append or rotation)."""
        problem = self._append_error or self._rotation_error
        return {"ok": problem is None, "writable": self._append_error is None, "problem": problem}

    def table(self) -> pa.Table:
        """Every stored label, in append order, as one Arrow table."""
        return pa.Table.from_batches(self._batches, schema=self._schema)

    def close(self) -> None:
        """Close the active file and release the writer lock (labels are already durable)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._lock.closed:
            self._lock.close()  # closing the descriptor releases the flock

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
