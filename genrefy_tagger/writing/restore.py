"""Byte-exact undo: what the journal keeps to give back a file's original bytes.

A tag write changes one region of a file (the ID3v2 tag, the FLAC metadata blocks,
the Vorbis comment pages, the MP4 ``moov`` box, a RIFF chunk…) and maybe a few bytes
elsewhere (an ID3v1 genre byte, a RIFF size, shifted MP4 chunk offsets, renumbered Ogg
pages); what comes after a region that grew or shrank moves by the change in size. So
the original is: the written file's common first bytes, then the written file's bytes
moved back by that change (or not moved, when the region was at the end), except in a
few runs where the original's bytes are kept literally. :func:`patch` finds those runs
by comparing the two files, memory-mapped and block by block; when they hold at most
:data:`BOUND` bytes, the journal stores them (base64) with the sha256 of the original,
and the written file's size and the sha256 of its bytes that the rebuild does not use.
:func:`matches` tells whether a file is still exactly what genrefy wrote (those bytes
and everything the rebuild uses, which the original's hash covers), and
:func:`rebuild` writes the original piece by piece and proves it by the original's
hash. Above the bound the journal says so, and undo puts the previous tags back as it
always did (tag-equal).
"""

from __future__ import annotations

import base64
import hashlib
import mmap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: Most original bytes kept per file write.
BOUND = 1 << 20
#: Most separate runs kept (each costs a JSON pair).
_MAX_RUNS = 4096
#: Runs closer than this are merged, so that a changed checksum and counter are one run.
_GAP = 16
#: A patch this small is taken without trying the other alignment.
_SMALL = 1 << 16
_BLOCK = 1 << 20

Span = tuple[int, int]


@contextmanager
def mapped(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes, memory-mapped (read-only)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            yield b""
            return
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mm
        finally:
            with suppress(BufferError):  # an array still looks at it: the GC closes it
                mm.close()


def patch(original: Path, written: Path) -> dict[str, Any]:
    """What the journal stores to turn ``written`` back into ``original``, byte for byte."""
    with mapped(original) as old, mapped(written) as new:
        entry: dict[str, Any] = {"sha256": hashlib.sha256(old).hexdigest()}
        a, b = np.frombuffer(old, np.uint8), np.frombuffer(new, np.uint8)
        prefix = _prefix(a, b)
        # The tag grew or shrank in front of the audio (shift by the change in size), or
        # after it (no shift): keep whichever leaves fewer original bytes to store.
        # The files' last bytes tell which is likely; the other is tried only if it is not.
        delta = len(b) - len(a)
        tail = min(len(a), len(b), _BLOCK)
        ends_agree = np.array_equal(a[len(a) - tail :], b[len(b) - tail :])
        best: tuple[int, int, list[Span]] | None = None
        for shift in dict.fromkeys((delta, 0) if ends_agree else (0, delta)):
            runs = _runs(a, b, prefix, shift)
            if runs is not None:
                kept = sum(end - start for start, end in runs)
                if best is None or kept < best[0]:
                    best = (kept, shift, runs)
                if kept <= _SMALL:
                    break
        if best is None:
            entry.update(byte_exact=False, why=f"changed region over {BOUND >> 20} MB")
            return entry
        shift, runs = best[1], best[2]
        entry.update(
            byte_exact=True,
            size=len(a),
            prefix=prefix,
            shift=shift,
            runs=[[lo, base64.b64encode(old[lo:hi]).decode("ascii")] for lo, hi in runs],
            written_size=len(b),
            written_rest_sha256=_rest_hash(new, len(a), prefix, shift, runs),
        )
    return entry


def usable(entry: dict[str, Any] | None) -> bool:
    """True when a journal entry's ``restore`` field can give the original bytes back."""
    return bool(entry) and entry.get("byte_exact") is True and "written_rest_sha256" in entry


def matches(written: bytes | mmap.mmap, entry: dict[str, Any]) -> bool:
    """True when ``written`` has the size and the unused bytes of what genrefy wrote."""
    if len(written) != int(entry["written_size"]):
        return False
    size, prefix, shift = int(entry["size"]), int(entry["prefix"]), int(entry["shift"])
    spans = [(int(lo), int(lo) + len(base64.b64decode(data))) for lo, data in entry["runs"]]
    return _rest_hash(written, size, prefix, shift, spans) == entry["written_rest_sha256"]


def rebuild(written: bytes | mmap.mmap, entry: dict[str, Any], out: BinaryIO) -> bool:
    """Write the original bytes rebuilt from ``written`` to ``out``; True if they hash right.

    Written piece by piece from the source, so a large file is never held twice in memory.
    """
    size, prefix, shift = int(entry["size"]), int(entry["prefix"]), int(entry["shift"])
    runs = sorted((int(lo), base64.b64decode(data)) for lo, data in entry["runs"])
    digest = hashlib.sha256()
    with memoryview(written) as source:  # slices of a view copy nothing

        def put(piece: bytes | memoryview) -> None:
            digest.update(piece)
            out.write(piece)

        put(source[:prefix])
        pos = prefix
        for start, data in runs:
            if start > pos:
                put(source[pos + shift : start + shift])
            put(data)
            pos = start + len(data)
        if size > pos:
            put(source[pos + shift : size + shift])
    return digest.hexdigest() == entry["sha256"]


def _span(size: int, written: int, prefix: int, shift: int) -> Span:
    """The original's positions that ``shift`` maps into the written file (others: literal)."""
    lo = max(prefix, -shift)
    return lo, max(lo, min(size, written - shift))


def _rest_hash(
    written: bytes | memoryview, size: int, prefix: int, shift: int, runs: list[Span]
) -> str:
    """sha256 of the written bytes that rebuilding the original does not copy."""
    lo, hi = _span(size, len(written), prefix, shift)
    copied, pos = [(0, prefix)], lo
    for start, end in sorted(runs):
        start, end = max(start, lo), min(end, hi)
        if start > pos:
            copied.append((pos + shift, start + shift))
        pos = max(pos, end)
    if hi > pos:
        copied.append((pos + shift, hi + shift))
    digest, at = hashlib.sha256(), 0
    for start, end in sorted(copied):
        if start > at:
            digest.update(written[at:start])
        at = max(at, end)
    digest.update(written[at:])
    return digest.hexdigest()


def _first_difference(a: np.ndarray, b: np.ndarray) -> Iterator[int]:
    """Offsets of the blocks where ``a`` and ``b`` (same length) differ."""
    for start in range(0, len(a), _BLOCK):
        if not np.array_equal(a[start : start + _BLOCK], b[start : start + _BLOCK]):
            yield start


def _prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    for start in _first_difference(a[:n], b[:n]):
        stop = min(start + _BLOCK, n)
        return start + int(np.flatnonzero(a[start:stop] != b[start:stop])[0])
    return n


def _runs(a: np.ndarray, b: np.ndarray, prefix: int, shift: int) -> list[Span] | None:
    """Spans of ``a`` after ``prefix`` that differ from ``b`` moved by ``shift``."""
    lo, hi = _span(len(a), len(b), prefix, shift)
    spans: list[Span] = [(prefix, lo)] if lo > prefix else []
    kept = lo - prefix
    old, new = a[lo:hi], b[lo + shift : hi + shift]
    for start in _first_difference(old, new):
        stop = min(start + _BLOCK, len(old))
        diff = np.flatnonzero(old[start:stop] != new[start:stop])
        # Split where consecutive differing bytes are more than _GAP apart.
        breaks = np.flatnonzero(np.diff(diff) > _GAP)
        firsts = np.concatenate(([diff[0]], diff[breaks + 1]))
        lasts = np.concatenate((diff[breaks], [diff[-1]]))
        for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
            span = (lo + start + first, lo + start + last + 1)
            if spans and span[0] - spans[-1][1] <= _GAP:
                spans[-1] = (spans[-1][0], span[1])
            else:
                spans.append(span)
            kept += span[1] - span[0]
        if kept > BOUND or len(spans) > _MAX_RUNS:
            return None
    if hi < len(a):  # the original's end has no counterpart in the written file
        spans.append((hi, len(a)))
        kept += len(a) - hi
    return None if kept > BOUND else spans
