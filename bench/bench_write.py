"""Cost of a verified, journalled tag write and of its ``--undo``, per format, on 4-minute tracks.

    python bench/bench_write.py [--seconds 240] [--repeat 5] [--baseline REF] [--decode]

Makes one file per format in a temporary folder (MP3 and Opus encoded by FFmpeg
through PyAV, FLAC, WAV and Ogg Vorbis by libsndfile, AAC in M4A by FFmpeg), then
times what a run adds to a dry run for each file written: the journalled
``write_genres`` (copy, edit, verify other tags and the audio fingerprint, check the
decoders, store the undo data, fsync, rename), and what ``--undo`` does for it
(``journal.undo``: byte-exact where it can). ``--baseline REF`` also times the code of
git revision REF (its ``genrefy_tagger`` unpacked with ``git archive``) on copies of the
same files in the same run, in a child process each. ``--decode`` also times the
current code with the fingerprint forced to decode the audio. Prints the median of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROV = "genrefy;model=bench;confidence=0.900;genres=Rock;date=2026-01-01T00:00:00Z"


def make_files(folder: Path, seconds: float) -> dict[str, Path]:
    import soundfile as sf
    from audiofiles import ffmpeg_encode, make_audio, signal

    files = {
        "mp3": ffmpeg_encode(
            folder / "a.mp3", container="mp3", codec="libmp3lame", seconds=seconds, vbr_quality=2
        ),
        "mp3-320k": ffmpeg_encode(
            folder / "b.mp3", container="mp3", codec="libmp3lame", seconds=seconds, bit_rate=320_000
        ),
        "flac": make_audio(folder / "a.flac", seconds=seconds, sample_rate=44100),
        "wav": make_audio(folder / "a.wav", seconds=seconds, sample_rate=44100),
        "m4a": make_audio(folder / "a.m4a", seconds=seconds, sample_rate=44100),
        "opus": ffmpeg_encode(folder / "a.opus", container="ogg", codec="libopus", seconds=seconds),
    }
    # libsndfile's Vorbis encoder crashes on one huge write: feed it in blocks.
    data = signal(seconds=seconds, sample_rate=44100)
    with sf.SoundFile(str(folder / "a.ogg"), "w", 44100, 2, format="OGG", subtype="VORBIS") as f:
        for start in range(0, len(data), 44100):
            f.write(data[start : start + 44100])
    files["ogg"] = folder / "a.ogg"
    return files


def _writing(name: str) -> ModuleType:
    """``genrefy_tagger.writing.<name>``, or the flat ``genrefy_tagger.<name>`` of a baseline
    revision from before the package was split into pipeline steps."""
    try:
        return importlib.import_module(f"genrefy_tagger.writing.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"genrefy_tagger.{name}")


def time_round_trips(path: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Read, journalled write and journal undo of ``path``, ``repeat`` times (this code)."""
    journal, tags = _writing("journal"), _writing("tags")
    Journal, undo = journal.Journal, journal.undo
    TagState, read_tags, write_genres = tags.TagState, tags.read_tags, tags.write_genres

    reads, writes, undos = [], [], []
    for i in range(repeat):
        journal_path = path.with_name(f".journal-{path.name}-{i}.jsonl")
        t0 = time.perf_counter()
        previous = read_tags(path)  # what the dry run does with the file's tags
        t1 = time.perf_counter()
        new = TagState(("Rock",), PROV)
        with Journal(journal_path) as journal:
            if hasattr(journal, "recorder"):
                record = journal.recorder(path, previous, new, model="bench")
                write_genres(path, new.genres, provenance=PROV, before_replace=record)
            else:  # the code before byte-exact undo: journalled first, then written
                journal.record(path, previous, new, model="bench")
                write_genres(path, new.genres, provenance=PROV)
        t2 = time.perf_counter()
        results = list(undo(journal_path))
        t3 = time.perf_counter()
        assert [r.action for r in results] == ["restored"], results
        reads.append(t1 - t0)
        writes.append(t2 - t1)
        undos.append(t3 - t2)
    return reads, writes, undos


def child(folder: Path, repeat: int, decode: bool) -> None:
    """Time every file in ``folder`` with the genrefy_tagger on sys.path; JSON lines out."""
    safe_write = _writing("safe_write")
    if decode:
        safe_write.payload_hash = lambda path: None  # force the decoding fallback
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        method = safe_write.audio_fingerprint(path)[0]
        reads, writes, undos = time_round_trips(path, repeat)
        row = {"file": path.name, "mb": path.stat().st_size / 1e6, "method": method}
        row.update(
            read=statistics.median(reads),
            write=statistics.median(writes),
            undo=statistics.median(undos),
        )
        print(json.dumps(row), flush=True)


def run_version(code: Path, folder: Path, repeat: int, decode: bool = False) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT / "tests")])}
    args = [sys.executable, __file__, "--child", str(folder), "--repeat", str(repeat)]
    out = subprocess.run(
        args + (["--decode"] if decode else []), env=env, check=True, capture_output=True
    )
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.startswith("{")]


def unpack(ref: str, folder: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "genrefy_tagger"], check=True, capture_output=True
    ).stdout
    folder.mkdir(parents=True)
    archive_path = folder / "code.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="REF", help="also time git revision REF")
    parser.add_argument("--decode", action="store_true", help="also time decoded fingerprints")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat, args.decode)
        return
    with tempfile.TemporaryDirectory() as tmp:
        originals = Path(tmp) / "originals"
        originals.mkdir()
        names = {path.name: name for name, path in make_files(originals, args.seconds).items()}
        versions = [("this", ROOT, False)]
        if args.baseline:
            versions.insert(0, (args.baseline, unpack(args.baseline, Path(tmp) / "base"), False))
        if args.decode:
            versions.append(("this, decoded", ROOT, True))
        print(f"{args.seconds:.0f}-s tracks, median of {args.repeat}; seconds")
        print(
            f"{'code':14} {'format':8} {'MB':>5} {'method':13} {'read':>6} {'write':>6} {'undo':>6}"
        )
        for label, code, decode in versions:
            folder = Path(tmp) / f"copies-{len(label)}-{decode}"
            shutil.copytree(originals, folder)
            for row in run_version(code, folder, args.repeat, decode):
                print(
                    f"{label[:14]:14} {names[row['file']]:8} {row['mb']:5.1f} {row['method']:13} "
                    f"{row['read']:6.3f} {row['write']:6.3f} {row['undo']:6.3f}"
                )


if __name__ == "__main__":
    main()
