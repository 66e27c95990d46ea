"""Tag, then undo, every audio file under some folders, on copies, and check nothing else changed.

    python bench/sweep_files.py FOLDER... [--all-files] [--verbose]

Each file is copied to a temporary folder first (the originals are never
touched), then put through what a run and its ``--undo`` do: read the tags,
decode the audio as the analysis does, write a genre with genrefy's provenance
field, read it back, and restore the previous state. Around every step the other
tags (read with mutagen directly) and the decoded audio (every sample FFmpeg
returns, hashed) are compared with the original.

Outcomes per file: ``ok``; ``refused`` with genrefy's one-line reason (the copy
must then be byte-identical); ``FAILED`` when anything else changed, the write
claimed success but reads back wrong, or an exception escaped. ``--all-files``
also tries files whose extension is not in the format table. Exit status 1 when
any file FAILED.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import mutagen

from genrefy_tagger import audio
from genrefy_tagger.formats import AUDIO_EXTENSIONS
from genrefy_tagger.tags import CannotHoldTags, TagError, TagState, read_tags, write_genres

GENRES = ("Sweep Test", "Second Genre")
PROV = (
    "genrefy;model=sweep;confidence=0.500;genres=Sweep Test|Second Genre;date=2026-01-01T00:00:00Z"
)
OURS = {"tcon", "txxx:genrefy", "genre", "genrefy", "©gen", "----:com.genrefy:genrefy"}
OURS |= {"wm/genre"}


def other_tags(path: Path) -> object:
    try:
        try:
            f = mutagen.File(path)
        except mutagen.MutagenError:
            f = mutagen.File(io.BytesIO(path.read_bytes()))  # a lying extension
    except Exception as exc:  # noqa: BLE001 - mutagen cannot read it: compare that
        return f"mutagen cannot read it: {type(exc).__name__}"
    if f is None or f.tags is None:
        return []
    items = f.tags.items() if hasattr(f.tags, "items") else f.tags
    return sorted((str(k), repr(v)) for k, v in items if str(k).lower() not in OURS)


def decoded_hash(path: Path) -> str:
    """sha256 of every sample FFmpeg decodes, or the decoder's error."""
    import av

    digest = hashlib.sha256()
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            for frame in c.decode(audio=0):
                digest.update(frame.to_ndarray().tobytes())
    except Exception:  # noqa: BLE001 - FFmpeg's complaint may vary with the file size
        return "undecodable"
    return digest.hexdigest()


def snapshot(path: Path) -> tuple[object, str]:
    return other_tags(path), decoded_hash(path)


def round_trip(path: Path) -> tuple[str, str]:
    """(outcome, reason) for one file, which may be changed (it is a copy)."""
    original = path.read_bytes()
    before = snapshot(path)
    try:
        y = audio.load(path, sample_rate=16000)
        heard = f"decoded {len(y) / 16000:.1f} s"
    except audio.AudioError as exc:
        heard = f"analysis cannot decode: {exc}"
    try:
        previous = read_tags(path)
        write_genres(path, GENRES, provenance=PROV)
    except CannotHoldTags as exc:
        return _refused(path, original, str(exc), heard)
    except TagError as exc:
        return _refused(path, original, str(exc), heard)
    wanted = TagState(GENRES, PROV)
    if read_tags(path) != wanted:
        return "FAILED", f"read back {read_tags(path)} after the write"
    if snapshot(path) != before:
        return "FAILED", _what_changed(before, snapshot(path), "write")
    try:
        write_genres(path, previous.genres, provenance=previous.provenance)
    except TagError as exc:
        return "FAILED", f"undo refused: {exc}"
    if read_tags(path) != previous:
        return "FAILED", f"undo read back {read_tags(path)}, not {previous}"
    if snapshot(path) != before:
        return "FAILED", _what_changed(before, snapshot(path), "undo")
    return "ok", heard


def _refused(path: Path, original: bytes, reason: str, heard: str) -> tuple[str, str]:
    if path.read_bytes() != original:
        return "FAILED", f"refused ({reason}) but the file changed"
    return "refused", f"{reason}; {heard}"


def _what_changed(before: tuple, after: tuple, step: str) -> str:
    if before[1] != after[1]:
        return f"{step} changed the decoded audio ({before[1][:12]} -> {after[1][:12]})"
    gone = set(before[0]) - set(after[0])
    new = set(after[0]) - set(before[0])
    return f"{step} changed other tags: -{sorted(gone)[:2]} +{sorted(new)[:2]}"


def files_under(folders: list[Path], all_files: bool) -> list[Path]:
    found = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and (all_files or p.suffix.lower() in AUDIO_EXTENSIONS):
                found.append(p)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--all-files", action="store_true")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(files_under(args.folders, args.all_files)):
            copy = Path(tmp) / str(i) / src.name
            copy.parent.mkdir()
            shutil.copyfile(src, copy)
            try:
                with audio.quiet_decoder():
                    outcome, reason = round_trip(copy)
            except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the end
                outcome = "FAILED"
                reason = f"exception {traceback.format_exception_only(exc)[-1].strip()}"
            ext = src.suffix.lower() or "(none)"
            table[ext][outcome] += 1
            if outcome != "ok":
                reasons[ext][f"{outcome}: {_general(reason)}"] += 1
            failed += outcome == "FAILED"
            if args.verbose or outcome == "FAILED":
                print(f"{outcome:8} {src}: {reason}")
    print(f"\n{'ext':8} {'files':>5} {'ok':>4} {'refused':>7} {'FAILED':>6}")
    for ext in sorted(table):
        c = table[ext]
        print(f"{ext:8} {sum(c.values()):5} {c['ok']:4} {c['refused']:7} {c['FAILED']:6}")
        for reason, n in reasons[ext].most_common():
            print(f"{'':8} {n:3} x {reason}")
    return 1 if failed else 0


def _general(reason: str) -> str:
    """A reason without the per-file details (durations), so that reasons group."""
    return reason.split("; decoded ")[0]


if __name__ == "__main__":
    sys.exit(main())
