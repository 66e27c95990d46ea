"""Cost of a verified tag write and of its undo, per format, on 4-minute tracks.

    python bench/bench_write.py [--seconds 240] [--repeat 5] [--decode]

Makes one file per format in a temporary folder (MP3 and Opus encoded by FFmpeg
through PyAV, FLAC and Ogg Vorbis by libsndfile, AAC in M4A by FFmpeg), then
times ``write_genres`` (copy, edit, verify other tags and the audio fingerprint,
fsync, rename) and the undo (``write_genres`` back to the previous state), which
is what a real run adds to a dry run for each file written. ``--decode`` also
times the same with the fingerprint forced to decode the audio (the method used
before payload hashing), for comparison. Prints the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from audiofiles import ffmpeg_encode, make_audio, signal  # noqa: E402

from genrefy_tagger import safe_write  # noqa: E402
from genrefy_tagger.tags import read_tags, write_genres  # noqa: E402

PROV = "genrefy;model=bench;confidence=0.900;genres=Rock;date=2026-01-01T00:00:00Z"


def make_files(folder: Path, seconds: float) -> dict[str, Path]:
    import soundfile as sf

    files = {
        "mp3": ffmpeg_encode(
            folder / "a.mp3", container="mp3", codec="libmp3lame", seconds=seconds, vbr_quality=2
        ),
        "mp3-320k": ffmpeg_encode(
            folder / "b.mp3", container="mp3", codec="libmp3lame", seconds=seconds, bit_rate=320_000
        ),
        "flac": make_audio(folder / "a.flac", seconds=seconds, sample_rate=44100),
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


def time_round_trips(path: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    reads, writes, undos = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        read_tags(path)  # what the dry run does with the file's tags
        t1 = time.perf_counter()
        previous = write_genres(path, ["Rock"], provenance=PROV)
        t2 = time.perf_counter()
        write_genres(path, previous.genres, provenance=previous.provenance)
        t3 = time.perf_counter()
        reads.append(t1 - t0)
        writes.append(t2 - t1)
        undos.append(t3 - t2)
    return reads, writes, undos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--decode", action="store_true", help="also time decoded fingerprints")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.seconds)
        print(f"{args.seconds:.0f}-s tracks, median of {args.repeat}; seconds")
        print(f"{'format':8} {'MB':>5} {'method':13} {'read':>6} {'write':>6} {'undo':>6}")
        modes = [False, True] if args.decode else [False]
        for decode in modes:
            real = safe_write.payload_hash
            if decode:
                safe_write.payload_hash = lambda path: None  # force the decoding fallback
            try:
                for name, path in files.items():
                    method = safe_write.audio_fingerprint(path)[0]
                    reads, writes, undos = time_round_trips(path, args.repeat)
                    size = path.stat().st_size / 1e6
                    print(
                        f"{name:8} {size:5.1f} {method:13} {statistics.median(reads):6.3f} "
                        f"{statistics.median(writes):6.3f} {statistics.median(undos):6.3f}"
                    )
            finally:
                safe_write.payload_hash = real


if __name__ == "__main__":
    main()
