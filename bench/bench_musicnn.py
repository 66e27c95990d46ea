"""Speed of the musicnn bundle on the tagging side (LiteRT, 1 thread per process).

Measures, on this machine:

* the front-end's cost per 3-s patch (and the head's per group of windows);
* the cost of one 4-minute track through ``MusicnnPredictor.window_probabilities``
  (decode the 10 planned windows + log-mel + front-end + head), split by stage;
* throughput with ``--jobs`` worker processes (the tagger's process pool).

The 4-minute tracks are made from a shared GTZAN clip (or a synthetic signal when
the clips are absent): resampled to 44.1 kHz stereo, tiled to 240 s, written as
Ogg Vorbis and FLAC in a temporary folder.

    .venv/bin/python bench/bench_musicnn.py --jobs 2 --out runs/bench_musicnn.json
"""

from __future__ import annotations

import os

# One BLAS thread per process, as the tagger's workers run (set before NumPy loads).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "genrefy_tagger" / "models" / "musicnn"


def make_tracks(folder: Path, seconds: float = 240.0) -> dict[str, Path]:
    """A 4-minute 44.1-kHz stereo track as Ogg Vorbis and FLAC."""
    import soundfile as sf
    import soxr

    clip = ROOT.parent / "shared" / "gtzan" / "genres" / "rock" / "rock.00000.ogg"
    if clip.is_file():
        y, sr = sf.read(str(clip), dtype="float32")
        y = soxr.resample(y, sr, 44100)
    else:
        t = np.arange(30 * 44100) / 44100
        y = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    y = np.tile(y, int(np.ceil(seconds * 44100 / len(y))))[: int(seconds * 44100)]
    stereo = np.stack([y, 0.9 * y], axis=1)
    out = {}
    for fmt, ext, subtype in (("OGG", "ogg", "VORBIS"), ("FLAC", "flac", "PCM_16")):
        out[ext] = folder / f"track4min.{ext}"
        # In blocks: libsndfile's Vorbis encoder crashes on one multi-minute write.
        with sf.SoundFile(str(out[ext]), "w", 44100, 2, format=fmt, subtype=subtype) as f:
            for i in range(0, len(stereo), 44100):
                f.write(stereo[i : i + 44100])
    return out


def per_call(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def single_process(tracks: dict[str, Path], repeats: int, max_windows: int) -> dict[str, float]:
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.reading.musicnn import read_track_windows, window_patches
    from genrefy_tagger.reading.windows import WindowPolicy

    start = time.perf_counter()
    predictor = MusicnnPredictor(BUNDLE, threads=1)
    load_s = time.perf_counter() - start
    policy = WindowPolicy(max_windows=max_windows)
    rng = np.random.default_rng(0)
    patch = rng.random((1, 187, 96), dtype=np.float32) * 3
    group = rng.random((10, 50), dtype=np.float32)
    out = {
        "predictor_load_s": load_s,
        "frontend_per_patch_s": per_call(lambda: predictor.taggrams(patch), 5 * repeats),
        "head_per_group_s": per_call(lambda: predictor.head_probabilities(group), 5 * repeats),
    }
    for ext, path in tracks.items():
        segments = read_track_windows(path, policy=policy)[0]
        patches = window_patches(segments)
        out[f"{ext}_windows"] = len(segments)
        out[f"{ext}_decode_s"] = per_call(
            lambda p=path: read_track_windows(p, policy=policy), repeats
        )
        out[f"{ext}_log_mel_s"] = per_call(lambda s=segments: window_patches(s), repeats)
        out[f"{ext}_frontend_s"] = per_call(lambda p=patches: predictor.taggrams(p), repeats)
        out[f"{ext}_track_s"] = per_call(
            lambda p=path: predictor.window_probabilities(p, policy=policy), repeats
        )
    return out


_worker: dict = {}


def _init(max_windows: int) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.reading.windows import WindowPolicy

    _worker["p"] = MusicnnPredictor(BUNDLE, threads=1)
    _worker["policy"] = WindowPolicy(max_windows=max_windows)


def _run(path: str) -> int:
    probs, _, _ = _worker["p"].window_probabilities(path, policy=_worker["policy"])
    return int(probs.mean(0).argmax())


def throughput(path: Path, jobs: int, n_tracks: int, max_windows: int) -> float:
    """Tracks per second with ``jobs`` processes (pool start-up excluded)."""
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init, initargs=(max_windows,)) as pool:
        list(pool.map(_run, [str(path)] * jobs))  # warm every worker
        start = time.perf_counter()
        list(pool.map(_run, [str(path)] * n_tracks))
        return n_tracks / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tracks", type=int, default=24, help="tracks in the throughput run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-windows", type=int, default=10, help="the window plan's budget")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tracks = make_tracks(Path(tmp))
        result = {"cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
        result["max_windows"] = args.max_windows
        result.update(single_process(tracks, args.repeats, args.max_windows))
        for ext, path in tracks.items():
            result[f"{ext}_tracks_per_s_{args.jobs}_jobs"] = throughput(
                path, args.jobs, args.tracks, args.max_windows
            )
        result["load_average_after"] = os.getloadavg()[0]
    print(
        json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1
        )
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
