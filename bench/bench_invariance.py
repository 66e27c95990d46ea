"""Do picks hold when nothing musical changes? Agreement under six transformations.

Each of the shared ff-test clips (161) is tagged as it is and after six changes a
library's copy of a recording may carry — −12 dB; 4 s of digital silence at both
ends; +6 dB with clipping at full scale; looped to 3 minutes; an MP3 re-encode
(128 kb/s, PyAV); 44.1 kHz stereo — through the real tagging path
(:class:`genrefy_tagger.listening.engine.AnalysisPool`, the shipped bundle and window plan).
A pick "agrees" when the transformed file's top genre equals the original's.

Evaluation only: nothing here is used to train, tune or choose anything. The
transformed files are written once under ``.cache/invariance/`` (ignored by git).

    .venv/bin/python bench/bench_invariance.py [--model hybrid] [--jobs 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GTZAN = Path(os.environ.get("GENREFY_GTZAN", ROOT.parent / "shared" / "gtzan"))
CACHE = ROOT / ".cache" / "invariance"
TRANSFORMS = ("minus12db", "pad4s", "plus6db_clipped", "loop3min", "mp3", "stereo44k")


def test_clips(gtzan: Path) -> list[dict[str, str]]:
    with open(gtzan / "manifest.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["fault_filtered_split"] == "test"]


def write_mp3(path: Path, y: np.ndarray, sample_rate: int, kbps: int = 128) -> None:
    import av

    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("mp3", rate=sample_rate, layout="mono")
        stream.bit_rate = kbps * 1000
        size = stream.codec_context.frame_size or 1152
        for i in range(0, len(y), size):
            frame = av.AudioFrame.from_ndarray(y[None, i : i + size], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def make_variant(src: Path, name: str, dest: Path) -> Path:
    """Write transformation ``name`` of ``src`` (decoded at its own rate, mono) under ``dest``."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(str(src), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    out = dest / (src.stem + (".mp3" if name == "mp3" else ".wav"))
    if out.is_file():
        return out
    dest.mkdir(parents=True, exist_ok=True)
    if name == "minus12db":
        y = y * 10 ** (-12 / 20)
    elif name == "pad4s":
        y = np.pad(y, int(4 * sr))
    elif name == "plus6db_clipped":
        y = np.clip(y * 10 ** (6 / 20), -1.0, 1.0)
    elif name == "loop3min":
        y = np.tile(y, int(np.ceil(180 * sr / len(y))))[: int(180 * sr)]
    elif name == "stereo44k":
        y = soxr.resample(y, sr, 44100)
        sr = 44100
        y = np.stack([y, y], axis=1)
    if name == "mp3":
        write_mp3(out, y.astype(np.float32), sr)
    else:
        sf.write(str(out), y, sr, subtype="FLOAT")
    return out


def analyse(paths: list[Path], model: str | None, jobs: int) -> list:
    """Each file's :class:`~genrefy_tagger.listening.vote.Decision` (None when nothing was
    heard)."""
    from genrefy_tagger.listening.engine import analyse_paths

    return [a.decision for a in analyse_paths(paths, bundle_path=model, jobs=jobs)]


def picks(paths: list[Path], model: str | None, jobs: int) -> list[str | None]:
    return [d.genre if d else None for d in analyse(paths, model, jobs)]


def measure(model: str | None, jobs: int, gtzan: Path = GTZAN, transforms=TRANSFORMS) -> dict:
    """Original picks, accuracy, and agreement per transformation (all through the tagger)."""
    rows = test_clips(gtzan)
    sources = [gtzan / r["path"] for r in rows]
    truth = [r["genre"] for r in rows]
    start = time.time()
    decisions = analyse(sources, model, jobs)
    original = [d.genre if d else None for d in decisions]
    result: dict = {
        "model": model,
        "n_clips": len(rows),
        "accuracy_original": float(np.mean([p == t for p, t in zip(original, truth, strict=True)])),
        "tracks": [r["track_id"] for r in rows],
        "truth": truth,
        "picks": original,
        "ranked": [dict(d.ranked) if d else None for d in decisions],
        "unsure": [bool(d is None or d.unsure) for d in decisions],
        "transforms": {},
    }
    flips_all = 0
    for name in transforms:
        files = [make_variant(s, name, CACHE / name) for s in sources]
        got = picks(files, model, jobs)
        same = [a == b for a, b in zip(original, got, strict=True)]
        flips_all += len(same) - sum(same)
        result["transforms"][name] = {
            "agreement": float(np.mean(same)),
            "flips": [
                {"track": r["track_id"], "original": a, "transformed": b}
                for r, a, b, s in zip(rows, original, got, same, strict=True)
                if not s
            ],
            "accuracy": float(np.mean([p == t for p, t in zip(got, truth, strict=True)])),
        }
    if transforms:
        result["agreement_all"] = 1.0 - flips_all / (len(rows) * len(transforms))
    result["seconds"] = round(time.time() - start, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="musicnn, hybrid or a bundle folder")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the full result as JSON")
    args = parser.parse_args()
    result = measure(args.model, args.jobs)
    print(f"model {args.model or 'default'}: {result['n_clips']} shared ff-test clips, "
          f"accuracy {result['accuracy_original']:.3f} as they are")  # fmt: skip
    for name, r in result["transforms"].items():
        print(f"  {name:16s} agreement {r['agreement']:.3f} ({len(r['flips'])} flips)")
    print(f"  all six          agreement {result['agreement_all']:.3f}  (goal >= 0.97)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
