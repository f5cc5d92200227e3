"""Checksums per message: a torn tail is cut silently, any other damage is found, named
(file and byte offset), quarantined unchanged, and never silently drops a label."""

from __future__ import annotations

import pyarrow as pa
import pytest

from rlhp.data import LabelStore, read_labels
from rlhp.data.errors import CorruptLabelsError
from rlhp.data.label_log import scan_label_file
from rlhp.data.label_store import ACTIVE_NAME, QUARANTINE_NAME
from rlhp.data.schemas import label_schema, labels_to_batch


def write_labels(directory, make_label, n: int, rotate_every: int = 10_000) -> None:
    with LabelStore(directory, rotate_every=rotate_every) as store:
        for i in range(n):
            store.append([make_label(i, "a", "b")])


def spans(path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    return scan_label_file(data, path, label_schema()).spans


def flip(path, offset: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    return bytes(data)


def ids(directory) -> list[str]:
    return read_labels(directory).column("label_id").to_pylist()


def test_damage_mid_active_file_is_quarantined_not_cut(tmp_path, make_label) -> None:
    write_labels(tmp_path, make_label, 5)
    active = tmp_path / ACTIVE_NAME
    start, end = spans(active)[2]  # the third acknowledged label
    damaged = flip(active, end - 12)  # a byte of its data
    with pytest.raises(CorruptLabelsError, match=rf"{ACTIVE_NAME} is damaged at byte {start}"):
        read_labels(tmp_path)  # readers say so; they never drop the rest silently
    with pytest.raises(CorruptLabelsError) as raised:
        LabelStore(tmp_path)
    message = str(raised.value)
    assert f"damaged at byte {start}" in message and "\n" not in message
    assert "2 labels after the damage" in message and QUARANTINE_NAME in message
    (copy,) = (tmp_path / QUARANTINE_NAME).iterdir()
    assert copy.read_bytes() == damaged  # the damaged file, unchanged, for inspection
    # the labels after the damage are kept: only the damaged one is gone
    assert ids(tmp_path) == ["label-0", "label-1", "label-3", "label-4"]
    with LabelStore(tmp_path) as store:  # opening again goes on
        assert len(store) == 4
        store.append([make_label(5, "a", "b")])
    assert ids(tmp_path)[-1] == "label-5"


def test_damage_in_a_sealed_file_is_found_even_at_its_end(tmp_path, make_label) -> None:
    write_labels(tmp_path, make_label, 6, rotate_every=2)
    sealed = sorted(tmp_path.glob("labels-*.arrows"))[1]
    data = sealed.read_bytes()
    sealed.write_bytes(data[:-16])  # a sealed file is whole: a short one is damaged
    with pytest.raises(CorruptLabelsError, match=rf"{sealed.name} is damaged at byte"):
        read_labels(tmp_path)
    with pytest.raises(CorruptLabelsError, match="quarantined a copy as found in"):
        LabelStore(tmp_path, rotate_every=2)
    assert ids(tmp_path) == ["label-0", "label-1", "label-2", "label-4", "label-5"]


def test_a_torn_tail_is_still_cut_silently(tmp_path, make_label) -> None:
    write_labels(tmp_path, make_label, 3)
    active = tmp_path / ACTIVE_NAME
    good = active.read_bytes()
    torn = labels_to_batch([make_label(3, "a", "b")]).serialize().to_pybytes()
    for tail in (torn[:40], torn[:-8] + b"\x00" * 8, b"\x00" * len(torn)):  # crash mid-append
        active.write_bytes(good + tail)
        assert ids(tmp_path) == ["label-0", "label-1", "label-2"]
        with LabelStore(tmp_path) as store:
            assert len(store) == 3
        assert active.read_bytes() == good
    assert not (tmp_path / QUARANTINE_NAME).exists()


def test_every_single_byte_flip_in_a_message_is_detected(tmp_path, make_label) -> None:
    """No flipped byte after the header goes unnoticed or changes a label silently."""
    with LabelStore(tmp_path, rotate_every=3) as store:
        for i in range(3):
            store.append([make_label(i, f"seg-{i}", "seg-x", (1.0, 0.0, 0.5)[i])])
    sealed = next(tmp_path.glob("labels-*.arrows"))
    data = sealed.read_bytes()
    original = read_labels(tmp_path).to_pylist()
    header_end = spans(sealed)[0][0]
    for offset in range(header_end, len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        scan = scan_label_file(bytes(damaged), sealed, label_schema())
        assert scan.damage, f"a flip at byte {offset} went unnoticed"
        kept = pa.Table.from_batches(scan.batches, schema=label_schema()).to_pylist()
        assert all(row in original for row in kept), f"a flip at {offset} changed a label"


def test_files_without_checksums_are_still_read(tmp_path, make_label) -> None:
    """Stores written before checksums: header without the flag, plain batch messages."""
    header = label_schema().serialize().to_pybytes()
    messages = [
        labels_to_batch([make_label(i, "a", "b")]).serialize().to_pybytes() for i in range(3)
    ]
    (tmp_path / "labels-00000000.arrows").write_bytes(header + messages[0] + messages[1])
    (tmp_path / ACTIVE_NAME).write_bytes(header + messages[2] + messages[0][:30])  # torn
    assert ids(tmp_path) == ["label-0", "label-1", "label-2"]
    with LabelStore(tmp_path, rotate_every=2) as store:
        store.append([make_label(3, "a", "b")])  # goes on in the old active file, then rotates
    assert ids(tmp_path) == ["label-0", "label-1", "label-2", "label-3"]
    assert len(list(tmp_path.glob("labels-*.arrows"))) == 2
