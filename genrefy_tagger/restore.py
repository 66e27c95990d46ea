"""Byte-exact undo: what the journal keeps to give back a file's original bytes.

A tag write changes one region of a file (the ID3v2 tag, the FLAC metadata blocks,
the Vorbis comment pages, the MP4 ``moov`` box…) and maybe a few bytes further on
(an ID3v1 genre byte, shifted MP4 chunk offsets, renumbered Ogg pages), and moves
everything after the region by the same number of bytes. So the original is: the
written file's common first bytes, then the written file's bytes shifted back by the
change in size, except in a few runs where the original's bytes are kept literally.
:func:`patch` finds those runs by comparing the two files; when they hold at most
:data:`BOUND` bytes, the journal stores them (base64), together with the sha256 of the
original and of the written file. :func:`apply` rebuilds the original from a file that
still hashes as written, and proves it by the original's hash. Above the bound the
journal says so, and undo puts the previous tags back as it always did (tag-equal).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

#: Most original bytes kept per file write.
BOUND = 1 << 20
#: Most separate runs kept (each costs a JSON pair).
_MAX_RUNS = 4096
#: Files larger than this are not compared (they would be read whole into memory).
_MAX_FILE = 1 << 30
#: Runs closer than this are merged, so that a changed checksum and counter are one run.
_GAP = 16
_BLOCK = 1 << 22


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def patch(original: Path, written: Path) -> dict[str, Any]:
    """What the journal stores to turn ``written`` back into ``original``, byte for byte."""
    size = original.stat().st_size
    if max(size, written.stat().st_size) > _MAX_FILE:
        return {"byte_exact": False, "why": f"file over {_MAX_FILE >> 20} MB"}
    old, new = original.read_bytes(), written.read_bytes()
    prefix = _prefix(old, new)
    # The tag grew or shrank in front of the audio (shift by the change in size), or
    # after it (no shift): keep whichever leaves fewer original bytes to store.
    best: tuple[int, int, list[tuple[int, int]]] | None = None
    for shift in dict.fromkeys((len(new) - len(old), 0)):
        runs = _runs(old, new, prefix, shift)
        if runs is not None:
            kept = sum(end - start for start, end in runs)
            if best is None or kept < best[0]:
                best = (kept, shift, runs)
    entry: dict[str, Any] = {"sha256": sha256(old)}
    if best is None:
        entry.update(byte_exact=False, why=f"changed region over {BOUND >> 20} MB")
        return entry
    entry.update(
        byte_exact=True,
        written_sha256=sha256(new),
        size=len(old),
        prefix=prefix,
        shift=best[1],
        runs=[[start, base64.b64encode(old[start:end]).decode("ascii")] for start, end in best[2]],
    )
    return entry


def usable(entry: dict[str, Any] | None) -> bool:
    """True when a journal entry's ``restore`` field can give the original bytes back."""
    return bool(entry) and entry.get("byte_exact") is True and "written_sha256" in entry


def apply(written: bytes, entry: dict[str, Any]) -> bytes | None:
    """The original bytes rebuilt from ``written``, or None when they would not hash right."""
    if sha256(written) != entry["written_sha256"]:
        return None
    size, prefix, shift = int(entry["size"]), int(entry["prefix"]), int(entry["shift"])
    lo, hi = _span(size, len(written), prefix, shift)
    out = bytearray(size)
    out[:prefix] = written[:prefix]
    out[lo:hi] = written[lo + shift : hi + shift]
    for start, data in entry["runs"]:
        piece = base64.b64decode(data)
        out[start : start + len(piece)] = piece
    result = bytes(out)
    return result if sha256(result) == entry["sha256"] else None


def _prefix(old: bytes, new: bytes) -> int:
    n = min(len(old), len(new))
    for start in range(0, n, _BLOCK):
        a = np.frombuffer(old, np.uint8, min(_BLOCK, n - start), start)
        b = np.frombuffer(new, np.uint8, min(_BLOCK, n - start), start)
        diff = np.flatnonzero(a != b)
        if len(diff):
            return start + int(diff[0])
    return n


def _span(size: int, written: int, prefix: int, shift: int) -> tuple[int, int]:
    """The original's positions that ``shift`` maps into the written file (others: literal)."""
    lo = max(prefix, -shift)
    return lo, max(lo, min(size, written - shift))


def _runs(old: bytes, new: bytes, prefix: int, shift: int) -> list[tuple[int, int]] | None:
    """Spans of ``old`` after ``prefix`` that differ from ``new`` moved by ``shift``."""
    lo, hi = _span(len(old), len(new), prefix, shift)
    spans: list[tuple[int, int]] = [(prefix, lo)] if lo > prefix else []
    kept = lo - prefix
    for start in range(lo, hi, _BLOCK):
        stop = min(start + _BLOCK, hi)
        a = np.frombuffer(old, np.uint8, stop - start, start)
        b = np.frombuffer(new, np.uint8, stop - start, start + shift)
        diff = np.flatnonzero(a != b)
        if not len(diff):
            continue
        # Split where consecutive differing bytes are more than _GAP apart.
        breaks = np.flatnonzero(np.diff(diff) > _GAP)
        firsts = np.concatenate(([diff[0]], diff[breaks + 1]))
        lasts = np.concatenate((diff[breaks], [diff[-1]]))
        for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
            span = (start + first, start + last + 1)
            if spans and span[0] - spans[-1][1] <= _GAP:
                spans[-1] = (spans[-1][0], span[1])
            else:
                spans.append(span)
            kept += span[1] - span[0]
        if kept > BOUND or len(spans) > _MAX_RUNS:
            return None
    if hi < len(old):  # the original's end has no counterpart in the written file
        spans.append((hi, len(old)))
        kept += len(old) - hi
    return None if kept > BOUND else spans
