"""The label store's file format: Arrow IPC streams whose batch messages carry a CRC-32.

A label file is an Arrow IPC *stream* (any Arrow reader opens it): one schema message, then
one record-batch message per append. Each message the store writes carries, in the batch's
custom metadata, ``rlhp.checksum = "crc32:XXXXXXXX"``: the CRC-32 of the whole message as
written, computed with those eight hex digits set to ``0``. Files written since checksums
came say so in their schema metadata (``rlhp.checksum: crc32``), so a checksum missing from
one of their messages is damage, not an old message; files written before keep being read
(their messages are only checked to parse).

Why a checksum per message: a crash mid-append leaves a *torn tail* (the end of the last,
never acknowledged message missing or garbled), which is safe to cut. Damage anywhere else
(a bad disk block, a stray write) must not be mistaken for it, or cutting it would drop every
acknowledged label after it. ``scan_label_file`` resynchronises after a bad message (Arrow
messages start 8-byte aligned with ``0xFFFFFFFF``), so it can tell "nothing intact follows"
(torn tail) from "intact messages follow" (corruption), and salvage every intact message.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from rlhp.data.errors import SchemaMismatchError

CHECKSUM_KEY = b"rlhp.checksum"
_TAG = b"crc32:"
_PLACEHOLDER = b"0" * 8
_HEX8 = re.compile(rb"[0-9a-f]{8}")
_CONTINUATION = b"\xff\xff\xff\xff"
_END_OF_STREAM = _CONTINUATION + b"\x00\x00\x00\x00"


def file_header(schema: pa.Schema) -> bytes:
    """The schema message that starts a new label file (flagged as checksummed)."""
    metadata = dict(schema.metadata or {}) | {CHECKSUM_KEY: b"crc32"}
    return schema.with_metadata(metadata).serialize().to_pybytes()


def encode_batch(batch: pa.RecordBatch) -> bytes:
    """One append: ``batch`` as an IPC record-batch message with its CRC-32 inside."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch, custom_metadata={CHECKSUM_KEY: _TAG + _PLACEHOLDER})
    stream = sink.getvalue().to_pybytes()
    header = batch.schema.serialize().size
    assert stream.endswith(_END_OF_STREAM)
    message = bytearray(stream[header : -len(_END_OF_STREAM)])
    at = _tag_position(message)
    assert at is not None, "the checksum tag is in the message metadata"
    message[at : at + 8] = b"%08x" % zlib.crc32(message)
    return bytes(message)


def _tag_position(message: bytes | bytearray) -> int | None:
    """Offset of the 8 hex digits after ``crc32:`` in the message's metadata, if any."""
    if message[:4] != _CONTINUATION or len(message) < 8:
        return None
    meta_end = 8 + int.from_bytes(message[4:8], "little", signed=True)
    found = message.find(_TAG, 8, meta_end)
    return None if found < 0 else found + len(_TAG)


def _checksum_ok(message: bytes, at: int) -> bool:
    stored = message[at : at + 8]
    if not _HEX8.fullmatch(stored):
        return False
    zeroed = message[:at] + _PLACEHOLDER + message[at + 8 :]
    return zlib.crc32(zeroed) == int(stored, 16)


@dataclass
class LabelFileScan:
    """What ``scan_label_file`` found in one file.

    ``batches[i]`` was read from bytes ``spans[i]``; ``damage`` lists the byte ranges that
    are not intact messages. ``first_bad_end`` is where the first bad message says it ends
    (None if that could not be read), used to tell a torn tail from corruption.
    """

    schema: pa.Schema
    header_end: int
    size: int
    batches: list[pa.RecordBatch] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    damage: list[tuple[int, int]] = field(default_factory=list)
    first_bad_end: int | None = None

    @property
    def intact_end(self) -> int:
        """End of the intact prefix: where a torn tail would be cut."""
        return self.damage[0][0] if self.damage else self.size

    @property
    def torn_tail(self) -> bool:
        """Damage only at the very end, confined to one unfinished message: what a crash in
        the middle of an append leaves. Not the case if an intact message follows the damage
        or the first bad message is complete with bytes after it."""
        if len(self.damage) != 1 or self.damage[0][1] != self.size:
            return False
        return self.first_bad_end is None or self.first_bad_end >= self.size

    def salvage(self, data: bytes) -> bytes:
        """The file without its damage: the header and every intact message, in order."""
        return data[: self.header_end] + b"".join(data[a:b] for a, b in self.spans)

    def labels_in(self, start: int) -> int:
        """Labels in the intact messages at or after byte ``start``."""
        return sum(
            b.num_rows for b, (a, _) in zip(self.batches, self.spans, strict=True) if a >= start
        )


def scan_label_file(data: bytes, where: Path, schema: pa.Schema) -> LabelFileScan:
    """Read every intact message of a label file's bytes ``data`` (batches of ``schema``).

    Raises SchemaMismatchError if ``data`` does not start with an Arrow schema message
    (a foreign file: nothing is modified, the caller refuses it). Never raises for damage
    after the schema: that is reported in the result.
    """
    buf = pa.py_buffer(data)
    stream = pa.BufferReader(buf)
    try:
        found = pa.ipc.read_schema(pa.ipc.read_message(stream))
    except (pa.ArrowInvalid, OSError, EOFError) as e:
        raise SchemaMismatchError(
            f"{where}: not an Arrow IPC stream of labels ({e}); move it out of the label directory"
        ) from e
    checksummed = (found.metadata or {}).get(CHECKSUM_KEY) == b"crc32"
    scan = LabelFileScan(found, stream.tell(), len(data))
    pos = scan.header_end
    while pos < len(data):
        if data[pos:] == _END_OF_STREAM:  # closed by a standard Arrow writer
            break
        batch, end = _read_at(data, buf, pos, schema, checksummed)
        if batch is not None:
            scan.batches.append(batch)
            scan.spans.append((pos, end))
            pos = end
            continue
        if not scan.damage:
            scan.first_bad_end = end
        nxt = _next_intact(data, buf, pos + 8, schema, checksummed)
        scan.damage.append((pos, nxt))
        pos = nxt
    return scan


def _read_at(
    data: bytes, buf: pa.Buffer, pos: int, schema: pa.Schema, checksummed: bool
) -> tuple[pa.RecordBatch | None, int | None]:
    """(batch, end) of an intact message at ``pos``; (None, end or None) otherwise, with
    the end the message claims if it could be read whole."""
    if data[pos : pos + 4] != _CONTINUATION:
        return None, None
    stream = pa.BufferReader(buf.slice(pos))
    try:
        message = pa.ipc.read_message(stream)
    except (pa.ArrowException, OSError, EOFError, ValueError):
        return None, None
    end = pos + stream.tell()
    if message is None or message.type != "record batch":
        return None, end
    raw = data[pos:end]
    at = _tag_position(raw)
    if at is not None:
        if not _checksum_ok(raw, at):
            return None, end
    elif checksummed:
        return None, end
    try:
        batch = pa.ipc.read_record_batch(message, schema)
        if at is None:  # an old message without a checksum: at least check it is sound
            batch.validate(full=True)
    except (pa.ArrowException, OSError, ValueError):
        return None, end
    return batch, end


def _next_intact(
    data: bytes, buf: pa.Buffer, start: int, schema: pa.Schema, checksummed: bool
) -> int:
    """Offset of the next intact message at or after ``start`` (8-byte aligned), or EOF."""
    pos = start
    while True:
        pos = data.find(_CONTINUATION, pos)
        if pos < 0:
            return len(data)
        if (pos - start) % 8 == 0 and _read_at(data, buf, pos, schema, checksummed)[0] is not None:
            return pos
        pos += 1
