"""LabelStore under injected disk faults: a label is acknowledged only once fsynced, and a
failure after that (a file rotation hitting ENOSPC / EIO) never changes the answer nor stops
later appends; a failed write is rolled back and the next append works."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from fault_injection import Faults, fd_dir, fd_named, named
from rlhp.data import LabelStore, read_labels
from rlhp.data.label_store import ACTIVE_NAME


def ids_on_disk(directory) -> list[str]:
    return read_labels(directory).column("label_id").to_pylist()


def dst_named(prefix: str):
    return lambda src, dst: os.path.basename(dst).startswith(prefix)


ROTATION_FAULTS = {
    # step of the rotation -> (os call, when, how many times in a row it fails)
    "new file aside (ENOSPC)": ("open", named(ACTIVE_NAME + ".tmp"), 3),
    "seal rename (EIO)": ("replace", dst_named("labels-"), 3),
    "new file rename (EIO)": ("replace", dst_named(ACTIVE_NAME), 1),
    "directory fsync (EIO)": ("fsync", None, 1),
}


@pytest.mark.parametrize("step", list(ROTATION_FAULTS))
def test_a_failed_rotation_changes_no_answer_and_appends_go_on(
    tmp_path, make_label, monkeypatch, step
) -> None:
    name, when, times = ROTATION_FAULTS[step]
    faults = Faults(monkeypatch)
    code = errno.ENOSPC if "ENOSPC" in step else errno.EIO
    store = LabelStore(tmp_path, rotate_every=2)
    faults.fail(name, code, when or fd_dir(tmp_path), times=times)
    acked: list[str] = []
    health = []
    for i in range(8):
        acked += store.append([make_label(i, "a", "b")])  # never raises: stored once fsynced
        health.append(store.health())
        assert ids_on_disk(tmp_path) == acked  # readers see every acknowledged label
    assert not health[1]["ok"] and health[1]["writable"]
    assert "rotating" in health[1]["problem"] and os.strerror(code) in health[1]["problem"]
    assert health[-1] == {"ok": True, "writable": True, "problem": None}  # retried, done
    assert list(tmp_path.glob("labels-*.arrows"))  # the rotation happened in the end
    store.close()
    with LabelStore(tmp_path, rotate_every=2) as again:
        assert again.table().column("label_id").to_pylist() == acked
        again.append([make_label(8, "a", "b")])
    assert not list(tmp_path.glob("*.tmp"))
    assert ids_on_disk(tmp_path) == [*acked, "label-8"]


def test_a_failed_write_is_rolled_back_and_the_next_append_works(
    tmp_path, make_label, monkeypatch
) -> None:
    faults = Faults(monkeypatch)
    store = LabelStore(tmp_path)
    store.append([make_label(0, "a", "b")])
    size = (tmp_path / ACTIVE_NAME).stat().st_size
    for call in ("write", "fsync"):  # ENOSPC half way through the bytes; EIO on the fsync
        faults.fail(call, errno.ENOSPC if call == "write" else errno.EIO, fd_named(ACTIVE_NAME))
        with pytest.raises(OSError):
            store.append([make_label(1, "a", "b")])
        assert (tmp_path / ACTIVE_NAME).stat().st_size == size  # nothing half written stays
        assert "label-1" not in store and ids_on_disk(tmp_path) == ["label-0"]
        assert store.health()["writable"] is False
    # the roll-back itself fails too (EIO): the next append truncates first
    faults.fail("write", errno.ENOSPC, fd_named(ACTIVE_NAME))
    faults.fail("ftruncate", errno.EIO, fd_named(ACTIVE_NAME))
    with pytest.raises(OSError):
        store.append([make_label(1, "a", "b")])
    assert (tmp_path / ACTIVE_NAME).stat().st_size > size  # torn bytes left behind
    assert ids_on_disk(tmp_path) == ["label-0"]  # readers skip them (a torn tail)
    assert store.append([make_label(1, "a", "b")]) == ["label-1"]
    assert store.health()["ok"]
    store.close()
    with LabelStore(tmp_path) as again:
        assert again.table().column("label_id").to_pylist() == ["label-0", "label-1"]


def test_an_append_is_acknowledged_only_after_the_fsync_of_its_bytes(
    tmp_path, make_label, monkeypatch
) -> None:
    """Fails if ``append`` returns before fsync, or never fsyncs: a SIGKILL test cannot
    show this (the page cache survives the process), a held fsync can."""
    real_fsync = os.fsync
    entered, release = threading.Event(), threading.Event()
    synced_sizes: list[int] = []

    def held_fsync(fd: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == ACTIVE_NAME:
            entered.set()
            assert release.wait(10)
            synced_sizes.append(os.fstat(fd).st_size)
        real_fsync(fd)

    store = LabelStore(tmp_path)
    monkeypatch.setattr(os, "fsync", held_fsync)
    result: list[list[str]] = []
    writer = threading.Thread(target=lambda: result.append(store.append([make_label(0, "a", "b")])))
    writer.start()
    assert entered.wait(5), "append did not fsync the active file"
    writer.join(0.3)
    assert writer.is_alive() and not result, "append returned before its fsync finished"
    release.set()
    writer.join(5)
    assert result == [["label-0"]]
    assert synced_sizes == [(tmp_path / ACTIVE_NAME).stat().st_size]  # the fsync covered it
    store.close()
