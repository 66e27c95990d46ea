"""Where a track's time goes with the default model, and end-to-end throughput, against a baseline.

    python bench/bench_speed.py --baseline-tree ../genrefy-base             # 24 MP3s, 3 rounds
    mkdir ../genrefy-base && git archive 92f0c10 | tar -x -C ../genrefy-base  # e.g. a baseline

Runs every measurement once per code tree per round, alternating the trees, so both see
the same machine load (this machine is shared; absolute times are noisy, the ratio less):

* stages: one worker-like process per tree tags the files with ``MusicnnPredictor`` and
  reports the CPU time (``time.thread_time``, not disturbed by other processes waiting
  for the CPU) per track of each stage — probe, decode of the planned windows (seek,
  decode, mix-down, resample, silence check), log-mel, front-end, head — and the wall
  time of a fresh process up to its first result (imports, model load, first file);
* end to end: ``genrefy-tag --dry-run -q -j JOBS`` on the folder of MP3s, wall time;
* decode only: the same files decoded whole, one process (what the issue compares with).

The tracks are 4-minute stereo 22.05-kHz MP3s, each 8 shared GTZAN clips back to back,
written to ``.cache/bench/mp3-240s`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_tagger import add_gtzan_option  # bench/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
SR, TRACK_SECONDS = 22050, 240

# Runs in a fresh interpreter with the tree under test first on sys.path.
_STAGES = r"""
import json, os, sys, time
t0 = time.perf_counter()
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
try:  # the pipeline layout (reading/, listening/); a baseline tree may predate it
    from genrefy_tagger.reading import audio, musicnn
    from genrefy_tagger.reading.windows import WindowPolicy
    from genrefy_tagger.listening.model import load_bundle
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
except ImportError:
    from genrefy_tagger import audio, musicnn
    from genrefy_tagger.model import load_bundle
    from genrefy_tagger.windows import WindowPolicy
    try:  # the model-kind layout; an older baseline may predate it too
        from genrefy_tagger.kinds.musicnn import MusicnnPredictor
    except ImportError:
        MusicnnPredictor = musicnn.MusicnnPredictor
bundle = load_bundle(None)
predictor = MusicnnPredictor(bundle.path, threads=1)
policy = WindowPolicy(max_windows=bundle.max_windows)
paths = sys.argv[1:]
predictor.window_probabilities(paths[0], policy=policy)
first = time.perf_counter() - t0
mel = getattr(predictor, "_mel_basis", None)
kw = {} if mel is None else {"mel_basis": mel}  # the baseline has no shipped filterbank
patches = lambda s: musicnn.window_patches(s, predictor.config, **kw)
stages = {k: [] for k in ("probe", "decode", "log_mel", "frontend", "head", "track")}
n_windows = []
def cpu(key, fn):
    c = time.thread_time(); out = fn(); stages[key].append(time.thread_time() - c); return out
for p in paths:
    cpu("probe", lambda: audio.probe(p))
    cfg = predictor.config
    seg = cpu("decode", lambda: musicnn.read_track_windows(p, policy=policy, config=cfg)[0])
    pat = cpu("log_mel", lambda: patches(seg))
    tags = cpu("frontend", lambda: predictor.taggrams(pat))
    cpu("head", lambda: predictor.head_probabilities(tags))
    cpu("track", lambda: predictor.window_probabilities(p, policy=policy))
    n_windows.append(len(seg))
print(json.dumps({"first_result_s": first, "windows_per_track": float(np.mean(n_windows)),
                  **{k: float(np.median(v)) for k, v in stages.items()}}))
"""

_DECODE = r"""
import sys, time
try:  # the pipeline layout; a baseline tree may predate it
    from genrefy_tagger.reading import audio
except ImportError:
    from genrefy_tagger import audio
t = time.perf_counter()
for p in sys.argv[1:]:
    audio.load(p, sample_rate=22050)  # the files' own rate: decoding only
print(time.perf_counter() - t)
"""


def make_mp3s(gtzan: Path, out: Path, n: int) -> list[Path]:
    """``n`` four-minute stereo MP3s, each 8 GTZAN clips back to back."""
    import soundfile as sf

    clips = sorted((gtzan / "genres").glob("*/*.ogg"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out / f"track{i:03d}.mp3"
        if not path.exists():
            parts = [sf.read(str(clips[(8 * i + k) % len(clips)]), dtype="float32")[0]
                     for k in range(8)]  # fmt: skip
            y = np.concatenate(parts)[: TRACK_SECONDS * SR]
            tmp = path.with_suffix(".part")
            sf.write(str(tmp), np.stack([y, y], axis=1), SR, format="MP3")
            tmp.rename(path)
        paths.append(path)
    return paths


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _python(tree: Path, code: str, args: list[str]) -> str:
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(tree),
        cwd=tree,  # ``python -c`` and ``-m`` put the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.strip().splitlines()[-1]


def end_to_end(tree: Path, folder: Path, jobs: int) -> float:
    """Wall seconds of ``genrefy-tag --dry-run -q -j jobs folder`` run from ``tree``."""
    cmd = [sys.executable, "-m", "genrefy_tagger", "--dry-run", "-q", "-j", str(jobs)]
    helptext = subprocess.run(
        [*cmd[:3], "--help"], env=_env(tree), cwd=tree, capture_output=True, text=True
    ).stdout
    if "--force" in helptext:  # re-analyse even where an analysis cache has the answer
        cmd.append("--force")
    start = time.perf_counter()
    subprocess.run([*cmd, str(folder)], env=_env(tree), cwd=tree, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-tree", type=Path, help="a checkout of the code to compare with")
    add_gtzan_option(ap)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--stage-files", type=int, default=8, help="files in the stage breakdown")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    folder = ROOT / ".cache" / "bench" / "mp3-240s"
    paths = make_mp3s(args.gtzan, folder, args.files)
    trees = {"this tree": ROOT}
    if args.baseline_tree:
        trees = {"baseline": args.baseline_tree.resolve(), **trees}
    n = len(paths)
    print(f"{n} MP3s of {TRACK_SECONDS} s (stereo 22.05 kHz), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip

    stage_runs: dict[str, list[dict]] = {k: [] for k in trees}
    wall: dict[str, list[float]] = {k: [] for k in trees}
    decode: list[float] = []
    stage_args = [str(p) for p in paths[: args.stage_files]]
    for r in range(args.rounds):
        for name, tree in trees.items():
            stage_runs[name].append(json.loads(_python(tree, _STAGES, stage_args)))
            wall[name].append(end_to_end(tree, folder, args.jobs))
        decode.append(float(_python(ROOT, _DECODE, [str(p) for p in paths])))
        print(f"round {r + 1}: " + ", ".join(f"{k} {wall[k][-1]:.2f} s" for k in trees)
              + f", decode only {decode[-1]:.2f} s; load {os.getloadavg()[0]:.1f}")  # fmt: skip

    result: dict[str, dict] = {"decode_only_whole_files_s": {"median": statistics.median(decode)}}
    keys = ("probe", "decode", "log_mel", "frontend", "head", "track")
    print("\nCPU ms per track, median over files, then over rounds (thread_time):")
    print(f"{'stage':<14}" + "".join(f"{k:>12}" for k in trees))
    for key in keys:
        row = {k: 1e3 * statistics.median(run[key] for run in stage_runs[k]) for k in trees}
        print(f"{key:<14}" + "".join(f"{v:12.1f}" for v in row.values()))
        result.setdefault("cpu_ms_per_track", {})[key] = row
    row = {k: statistics.median(run["first_result_s"] for run in stage_runs[k]) for k in trees}
    print(f"{'first result':<14}" + "".join(f"{v:11.2f}s" for v in row.values()))
    result["first_result_s"] = row
    print(f"\ngenrefy-tag --dry-run -q -j {args.jobs}, {n} files (median of {args.rounds} rounds):")
    dec = statistics.median(decode)
    for k in trees:
        secs = statistics.median(wall[k])
        print(f"  {k:<10} {secs:6.2f} s = {n / secs:5.2f} tracks/s "
              f"({secs / dec:.2f}x decoding the files whole on one core, {dec:.2f} s)")  # fmt: skip
        result.setdefault("end_to_end", {})[k] = {
            "seconds": wall[k], "median_s": secs, "tracks_per_s": n / secs
        }  # fmt: skip
    result["files"], result["jobs"], result["load_average_end"] = n, args.jobs, os.getloadavg()[0]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
