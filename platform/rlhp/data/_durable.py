"""Crash-safe files (POSIX): the one way rlhp writes a file that must survive a power loss.

``write_atomic`` is the helper every durable whole-file write goes through (pinned segments,
the label store's new files, run checkpoints, the reward model, the labelling queue): after a
crash the file is either the old one, absent, or the new one whole, never empty or half
written. Everything here uses os-level calls (``os.open``, ``os.write``, ``os.fsync``,
``os.replace``) so that tests can inject ENOSPC / EIO at exactly those calls.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (fsync of the directory entry)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_synced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create or overwrite ``path`` with ``data`` and fsync it (not its directory entry).

    On failure the partial file is removed (best effort) and the error re-raised.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise
    os.close(fd)


def write_atomic(
    path: str | Path, data: bytes | Callable[[BinaryIO], object], mode: int = 0o644
) -> None:
    """Write ``data`` to ``path`` so that after a crash the file is either absent or whole.

    ``data``: the bytes, or a function writing them to a binary file object (for example
    ``lambda f: torch.save(state, f)``). Writes ``path.tmp``, fsyncs it, renames it over
    ``path`` (atomic on POSIX), then fsyncs the directory so the rename itself survives a
    power loss. Returns only once all of that is on disk; on any failure ``path`` is
    unchanged (or, if only the last directory fsync failed, already replaced) and the error
    is raised. ``mode``: the permissions of a newly created file (0o600 for secrets).
    """
    path = Path(path)
    if callable(data):
        sink = io.BytesIO()
        data(sink)
        data = sink.getvalue()
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write_synced(tmp, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def remove_stale_tmp(directory: Path) -> None:
    """Delete ``*.tmp`` left by a crash inside ``write_atomic`` (never renamed, never acked)."""
    for tmp in directory.glob("*" + TMP_SUFFIX):
        tmp.unlink()


def unlink_quietly(path: Path) -> None:
    """Remove ``path`` if possible; on a failure path, the error being raised is the one
    to report, not this one."""
    with contextlib.suppress(OSError):
        os.unlink(path)
