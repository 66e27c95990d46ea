"""Tagger speed and memory, measured on 4-minute MP3 and FLAC files made from GTZAN clips.

    python bench/bench_tagger.py                      # 24 files, all measurements
    python bench/bench_tagger.py --memory-files 1000  # also peak memory over 1,000 files

Prints, for the same files: decode-only time (whole file, and only the windows we
analyse), our end-to-end ``genrefy-tag --dry-run`` throughput, and a naive baseline
(load the whole file, compute features chunk by chunk, predict chunk by chunk).
Files go to ``.cache/bench`` (git-ignored). Needs the shared GTZAN clips.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
TRACK_SECONDS = 240


def make_tracks(gtzan: Path, out: Path, n: int) -> list[Path]:
    """``n`` four-minute tracks (half MP3, half FLAC), each 8 GTZAN clips back to back."""
    import soundfile as sf

    clips = sorted((gtzan / "genres").glob("*/*.ogg"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        ext = "mp3" if i % 2 == 0 else "flac"
        path = out / f"track{i:03d}.{ext}"
        if not path.exists():
            parts = [
                sf.read(str(clips[(8 * i + k) % len(clips)]), dtype="float32")[0] for k in range(8)
            ]
            y = np.concatenate(parts)[: TRACK_SECONDS * SR]
            stereo = np.stack([y, y], axis=1)
            tmp = path.with_suffix(".part")
            fmt = "MP3" if ext == "mp3" else "FLAC"
            sf.write(str(tmp), stereo, SR, format=fmt)
            tmp.rename(path)
        paths.append(path)
    return paths


def time_decode(paths: list[Path]) -> tuple[float, float]:
    """Seconds to decode the files whole, and only the windows the tagger analyses."""
    from genrefy_tagger.reading import audio
    from genrefy_tagger.reading.config import FeatureConfig
    from genrefy_tagger.reading.windows import WindowPolicy, plan_starts

    cfg = FeatureConfig()
    t0 = time.perf_counter()
    for p in paths:
        audio.load(p, sample_rate=SR)
    whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in paths:
        info = audio.probe(p)
        starts = plan_starts(info.duration, window_seconds=3.0, policy=WindowPolicy())
        audio.load_segments(p, starts, seconds=3.0, sample_rate=cfg.sample_rate, info=info)
    windows = time.perf_counter() - t0
    return whole, windows


def time_naive(paths: list[Path]) -> float:
    """The seed's way: librosa.load the whole file, features and a prediction per chunk."""
    import librosa

    from genrefy_tagger.listening.kinds.hybrid import HybridModel
    from genrefy_tagger.listening.model import load_bundle
    from genrefy_tagger.reading.config import FeatureConfig
    from genrefy_tagger.reading.features import window_features

    cfg = FeatureConfig()
    predictor = HybridModel(load_bundle("hybrid"))  # the feature-based model, as in the seed
    t0 = time.perf_counter()
    for p in paths:
        y, _ = librosa.load(str(p), sr=cfg.sample_rate, mono=True)
        n = len(y) // cfg.window_samples
        probs = []
        for k in range(n):
            chunk = y[k * cfg.window_samples : (k + 1) * cfg.window_samples][None, :]
            probs.append(predictor.predict(window_features(chunk, config=cfg)))
        np.mean(np.concatenate(probs), axis=0).argmax()
    return time.perf_counter() - t0


class TreeMemory:
    """Peak resident memory of a process and all its descendants, polled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(0.1)

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(stat[1])
                rss[int(entry)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(kids)
            frontier.extend(kids)
        return sum(rss.get(p, 0) for p in tree)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_cli(args: list[str], *, force: bool = True) -> tuple[float, int, str]:
    """Wall seconds, peak tree memory (bytes) and stdout of one ``genrefy-tag`` run.

    ``force`` (the default) bypasses the analysis cache, so every file is really analysed.
    """
    cmd = [sys.executable, "-m", "genrefy_tagger", *(["--force"] if force else []), *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    mem = TreeMemory(proc.pid)
    out, _ = proc.communicate()
    return time.perf_counter() - t0, mem.stop(), out


def first_result_seconds(path: Path) -> float:
    """Fresh process to the first printed row, on one file."""
    cmd = [sys.executable, "-m", "genrefy_tagger", "--dry-run", "--force", "-j", "1", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.communicate()
    return elapsed


def add_gtzan_option(ap: argparse.ArgumentParser) -> None:
    """``--gtzan``: the shared clips, at $GENREFY_GTZAN or ../shared/gtzan by default."""
    ap.add_argument(
        "--gtzan",
        type=Path,
        default=Path(os.environ.get("GENREFY_GTZAN", ROOT.parent / "shared" / "gtzan")),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gtzan_option(ap)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--naive-files", type=int, default=4)
    ap.add_argument("--memory-files", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    out = ROOT / ".cache" / "bench" / "tracks"
    paths = make_tracks(args.gtzan, out, args.files)
    n = len(paths)
    print(f"{n} tracks of {TRACK_SECONDS} s (MP3 + FLAC, stereo 22.05 kHz), {os.cpu_count()} cores")

    helps = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "genrefy_tagger", "--help"], capture_output=True, check=True
        )
        helps.append(time.perf_counter() - t0)
    print(f"genrefy-tag --help:            {min(helps):6.3f} s (best of 5)")
    print(f"first result, fresh process:   {first_result_seconds(paths[0]):6.2f} s")

    whole, windows = time_decode(paths)
    print(f"decode only, whole files:      {whole:6.2f} s  ({n / whole:5.1f} tracks/s, 1 core)")
    print(f"decode only, analysed windows: {windows:6.2f} s  ({n / windows:5.1f} tracks/s, 1 core)")

    for model in ("musicnn", "hybrid"):
        for jobs in sorted({1, args.jobs}):
            secs, peak, _ = run_cli(
                ["--dry-run", "-q", "--model", model, "-j", str(jobs), str(out)]
            )
            print(
                f"genrefy-tag --dry-run --model {model:<7} -j {jobs}: {secs:6.2f} s "
                f"({n / secs:5.1f} tracks/s, peak {peak / 2**20:.0f} MB) = "
                f"{secs / whole:.2f}x whole-file decode, {secs / windows:.2f}x window decode"
            )

    k = min(args.naive_files, n)
    naive = time_naive(paths[:k])
    print(f"naive baseline (1 core):       {naive / k:6.2f} s/track ({k / naive:5.2f} tracks/s)")

    if args.memory_files:
        many = ROOT / ".cache" / "bench" / "many"
        many.mkdir(parents=True, exist_ok=True)
        for i in range(args.memory_files):
            link = many / f"{i:05d}{paths[i % n].suffix}"
            if not link.exists():
                os.link(paths[i % n], link)
        secs, peak, _ = run_cli(["--dry-run", "-q", "-j", str(args.jobs), str(many)])
        print(
            f"{args.memory_files} files: {secs:.1f} s ({args.memory_files / secs:.1f} tracks/s), "
            f"peak memory of the whole process tree {peak / 2**20:.0f} MB"
        )


if __name__ == "__main__":
    main()
