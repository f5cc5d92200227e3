"""Small helpers for crash-safe files: write-then-rename and directory fsync (POSIX)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (fsync of the directory entry)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that after a crash the file is either absent or whole.

    Writes ``path.tmp``, fsyncs it, renames it over ``path`` (atomic on POSIX), then fsyncs
    the directory so the rename itself survives a power loss.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_stale_tmp(directory: Path) -> None:
    """Delete ``*.tmp`` left by a crash inside ``write_atomic`` (never renamed, never acked)."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
