"""Tag, then undo, real test files from four projects and genrefy's own odd files, on copies.

    python bench/sweep_files.py [FOLDER...] [--all-files] [--verbose]

With no FOLDER it downloads the source distributions of mutagen, beets, pytaglib and
soundfile from the package index (``pip download --no-binary NAME --no-deps``, into
the ignored ``.cache/sweep``), unpacks them and sweeps them, plus ``tests/data`` and
files made here the way the test suite makes them (every format of
``tests/audiofiles.py``, ID3v1-only MP3s with and without a Xing header, a Monkey's
Audio header). Each file is copied to a temporary folder first (the originals are never
touched), then put through what a run and its ``--undo`` do: read the tags, write a
genre with genrefy's provenance field through the journal, then ``undo`` that journal.
Around every step each decoder's view (``genrefy_tagger.writing.decoders.views``: libsndfile's
and FFmpeg's stream facts, or their error), the other tags (read with mutagen) and the
audio FFmpeg decodes (every sample, hashed) are compared with the original's.

Outcomes per file: ``written`` (and undone: ``byte-identical``, or ``tag-equal`` when
its journal entry was over the bound); ``refused`` with genrefy's one-line reason (the
copy must then be byte-identical); ``FAILED`` when a decoder reads it differently after
the write or the undo, a refused file changed, a file within the bound is not
byte-identical after the undo, the tags read back wrong, or an exception escaped.
``--all-files`` also tries files whose extension is not in the format table. Exit
status 1 when any file FAILED.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import traceback
from pathlib import Path

import mutagen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from genrefy_tagger.reading import audio  # noqa: E402
from genrefy_tagger.reading.formats import AUDIO_EXTENSIONS  # noqa: E402
from genrefy_tagger.writing.decoders import views  # noqa: E402
from genrefy_tagger.writing.journal import Journal, read_journal, undo  # noqa: E402
from genrefy_tagger.writing.tags import TagError, TagState, read_tags, write_genres  # noqa: E402

PROJECTS = ("mutagen", "beets", "pytaglib", "soundfile")
CACHE = ROOT / ".cache" / "sweep"
GENRES = ("Sweep Test", "Second Genre")
PROV = (
    "genrefy;model=sweep;confidence=0.500;genres=Sweep Test|Second Genre;date=2026-01-01T00:00:00Z"
)
OURS = {"tcon", "txxx:genrefy", "genre", "genrefy", "©gen", "----:com.genrefy:genrefy"}
OURS |= {"wm/genre"}


# --- the files --------------------------------------------------------------------------------


def download() -> dict[str, Path]:
    """Each project's unpacked source distribution (downloaded once), by 'name-version'."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in PROJECTS:
        folder = CACHE / name
        archives = sorted(folder.glob("*.tar.gz")) if folder.exists() else []
        if not archives:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q"]
            subprocess.run([*pip, "--no-binary", name, "-d", str(folder), name], check=True)
            archives = sorted(folder.glob("*.tar.gz"))
        archive = archives[-1]
        unpacked = folder / archive.name.removesuffix(".tar.gz")
        if not unpacked.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(folder, filter="data")
        found[unpacked.name] = unpacked
    return found


def own_files(folder: Path) -> Path:
    """genrefy's odd files: tests/data and files made as the test suite makes them."""
    from audiofiles import ALL_KINDS, make_audio
    from test_file_integrity import _ape, _id3v1_only_mp3

    folder.mkdir(parents=True)
    for name in (ROOT / "tests" / "data").iterdir():
        if name.suffix.lower() in AUDIO_EXTENSIONS:
            shutil.copyfile(name, folder / name.name)
    for kind in ALL_KINDS:
        make_audio(folder / f"made.{kind}", seconds=4.0)
    _id3v1_only_mp3(folder / "id3v1-only-xing.mp3", xing=True)
    _id3v1_only_mp3(folder / "id3v1-only-no-xing.mp3", xing=False)
    _ape(folder / "header-only.ape")
    return folder


def files_under(folders: list[Path], all_files: bool) -> list[Path]:
    found = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and (all_files or p.suffix.lower() in AUDIO_EXTENSIONS):
                found.append(p)
    return found


# --- one file ---------------------------------------------------------------------------------


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
    """sha256 of every sample FFmpeg decodes, or that it cannot."""
    import av

    digest = hashlib.sha256()
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            for frame in c.decode(audio=0):
                digest.update(frame.to_ndarray().tobytes())
    except Exception:  # noqa: BLE001 - FFmpeg's complaint may vary with the file size
        return "undecodable"
    return digest.hexdigest()


def snapshot(path: Path) -> dict[str, object]:
    # An error's wording may change with the file's size (FFmpeg says where it gave up);
    # whether a decoder reads the file, and what it reads, may not.
    seen = {k: v if isinstance(v, dict) else "cannot read" for k, v in views(path).items()}
    return {"decoders": seen, "tags": other_tags(path), "audio": decoded_hash(path)}


def round_trip(path: Path, journal_path: Path) -> tuple[str, str, dict[str, object]]:
    """(outcome, reason, the decoders' views) for one file, which may be changed (a copy).

    A file that can take only an ID3v1 genre (``genrefy_tagger.writing.id3v1``) refuses
    the two sweep genres; it is tried again with one ID3v1 genre and no provenance.
    """
    outcome, reason, seen = _round_trip(path, journal_path, TagState(GENRES, PROV))
    if outcome == "refused" and "ID3v1 holds one genre" in reason:
        outcome, reason, seen = _round_trip(path, journal_path, TagState(("Jazz",), None))
        reason = f"{reason} (ID3v1 only)"
    return outcome, reason, seen


def _round_trip(path: Path, journal_path: Path, wanted: TagState) -> tuple[str, str, dict]:
    original = path.read_bytes()
    before = snapshot(path)
    seen = {"before": before["decoders"]}
    try:
        previous = read_tags(path)
        with Journal(journal_path) as journal:
            record = journal.recorder(path, previous, wanted, model="sweep")
            write_genres(path, wanted.genres, provenance=PROV, before_replace=record)
    except TagError as exc:
        if path.read_bytes() != original:
            return "FAILED", f"refused ({exc}) but the file changed", seen
        return "refused", str(exc), seen
    written = snapshot(path)
    seen["written"] = written["decoders"]
    if read_tags(path) != wanted:
        return "FAILED", f"read back {read_tags(path)} after the write", seen
    if written != before:
        return "FAILED", _what_changed(before, written, "write"), seen
    results = list(undo(journal_path))
    undone = snapshot(path)
    seen["undone"] = undone["decoders"]
    if [r.action for r in results] != ["restored"]:
        return "FAILED", f"undo: {results[0].action} ({results[0].reason})", seen
    if read_tags(path) != previous:
        return "FAILED", f"undo read back {read_tags(path)}, not {previous}", seen
    if undone != before:
        return "FAILED", _what_changed(before, undone, "undo"), seen
    exact = read_journal(journal_path)[0]["restore"]["byte_exact"]
    same = path.read_bytes() == original
    if exact and not same:
        return "FAILED", "within the bound but not byte-identical after the undo", seen
    if not exact:
        return "written", "tag-equal undo (changed region over the bound)", seen
    return "written", "byte-identical after the undo", seen


def _what_changed(before: dict, after: dict, step: str) -> str:
    for key in ("decoders", "audio"):
        if before[key] != after[key]:
            return f"{step} changed what the decoders read ({key}: {before[key]} -> {after[key]})"
    gone = set(before["tags"]) - set(after["tags"])
    new = set(after["tags"]) - set(before["tags"])
    return f"{step} changed other tags: -{sorted(gone)[:2]} +{sorted(new)[:2]}"


# --- the sweep --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--all-files", action="store_true")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    import av
    import soundfile

    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory() as tmp:
        sources = {str(f): f for f in args.folders}
        if not args.folders:
            sources = {**download(), "genrefy's own": own_files(Path(tmp) / "own")}
        print("sources:", ", ".join(sources))
        print(
            f"decoders: libsndfile {soundfile.__libsndfile_version__} (soundfile "
            f"{soundfile.__version__}), FFmpeg {getattr(av, 'ffmpeg_version_info', '?')} via PyAV "
            f"{av.__version__}; mutagen "
            f"{mutagen.version_string}"
        )
        for i, src in enumerate(files_under(list(sources.values()), args.all_files)):
            copy = Path(tmp) / str(i) / src.name
            copy.parent.mkdir()
            shutil.copyfile(src, copy)
            try:
                with audio.quiet_decoder():
                    outcome, reason, seen = round_trip(copy, Path(tmp) / str(i) / "journal.jsonl")
            except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the end
                outcome, seen = "FAILED", {}
                reason = f"exception {traceback.format_exception_only(exc)[-1].strip()}"
            ext = src.suffix.lower() or "(none)"
            table[ext][outcome] += 1
            table[ext]["tag-equal"] += reason.startswith("tag-equal")
            if outcome != "written":
                reasons[ext][f"{outcome}: {reason}"] += 1
            if args.verbose or outcome == "FAILED":
                print(f"{outcome:8} {src}: {reason}")
                for step, view in seen.items():
                    print(f"{'':8}   {step:7} {view}")
    _totals(table, reasons)
    return 1 if sum(c["FAILED"] for c in table.values()) else 0


def _totals(table: dict[str, collections.Counter], reasons: dict) -> None:
    print(f"\n{'ext':8} {'files':>5} {'written':>7} {'tag-eq':>6} {'refused':>7} {'FAILED':>6}")
    total: collections.Counter = collections.Counter()
    for ext in sorted(table):
        c = table[ext]
        total.update(c)
        files = c["written"] + c["refused"] + c["FAILED"]
        print(
            f"{ext:8} {files:5} {c['written']:7} {c['tag-equal']:6} {c['refused']:7} "
            f"{c['FAILED']:6}"
        )
        for reason, n in reasons[ext].most_common():
            print(f"{'':8} {n:3} x {reason}")
    files = total["written"] + total["refused"] + total["FAILED"]
    print(
        f"{'all':8} {files:5} {total['written']:7} {total['tag-equal']:6} "
        f"{total['refused']:7} {total['FAILED']:6}"
    )


if __name__ == "__main__":
    sys.exit(main())
