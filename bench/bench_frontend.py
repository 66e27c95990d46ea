"""MSD_musicnn front-end graphs on LiteRT: cost per patch and fidelity to the Keras port.

    python bench/bench_frontend.py [--clips 10] [--repeats 21]

Exports (needs TensorFlow, the training side) and compares, on real patches of shared
GTZAN ff-valid clips:

* ``port float32``: the port exported as it is (``build_frontend``), what shipped before;
* ``port, converter dynamic-range int8``: the TF converter's ``Optimize.DEFAULT`` on it;
* ``rearranged float32``: ``model_training.musicnn.fast.build_fast_frontend``;
* ``rearranged, int8 conv kernels``: the same with its five front-end convolution kernels
  stored as int8 (``export_fast_frontend``) — the shipped ``frontend.tflite``.

Times are the CPU time of the invoking thread (``time.thread_time``; one LiteRT thread),
median over ``--repeats`` rounds in which the variants take turns, so a busy machine
slows them alike. Fidelity: against the Keras port on every patch.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from bench_tagger import add_gtzan_option  # noqa: E402 - bench/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "genrefy_tagger" / "models" / "musicnn"


def valid_patches(gtzan: Path, n_clips: int) -> np.ndarray:
    """Every patch (musicnn's 1-s step) of the first ``n_clips`` ff-valid clips, genres mixed."""
    from genrefy_tagger.reading import audio
    from genrefy_tagger.reading.musicnn import track_patches

    with open(gtzan / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fault_filtered_split"] == "valid"]
    rows = rows[:: max(1, len(rows) // n_clips)][:n_clips]
    return np.concatenate([track_patches(audio.load(gtzan / r["path"], sample_rate=16000))
                           for r in rows])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gtzan_option(ap)
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from genrefy_tagger.listening.lite import LiteRunner
    from model_training.litert import export_litert
    from model_training.musicnn.fast import build_fast_frontend

    port = keras.models.load_model(BUNDLE / "frontend.keras", safe_mode=True, compile=False)
    patches = valid_patches(args.gtzan, args.clips)
    ref = port.predict(patches, verbose=0)
    spec = keras.InputSpec(shape=(1, *port.input_shape[1:]), dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            "port float32": Path(tmp) / "port.tflite",
            "port, converter dynamic-range int8": Path(tmp) / "port_dyn.tflite",
            "rearranged float32": Path(tmp) / "fast_f32.tflite",
            "rearranged, int8 conv kernels (shipped)": BUNDLE / "frontend.tflite",
        }
        export_litert(port, paths["port float32"])
        port.export(str(paths["port, converter dynamic-range int8"]), format="litert",
                    input_signature=[spec], verbose=False,
                    optimizations=[tf.lite.Optimize.DEFAULT])  # fmt: skip
        export_litert(build_fast_frontend(port), paths["rearranged float32"])
        lites = {k: LiteRunner(p) for k, p in paths.items()}
        outputs = {k: lite(patches) for k, lite in lites.items()}
        cpu: dict[str, list[float]] = {k: [] for k in lites}
        for r in range(args.repeats):
            x = patches[r % len(patches)][None]
            for k, lite in lites.items():
                start = time.thread_time()
                lite(x)
                cpu[k].append(time.thread_time() - start)

    print(f"{len(patches)} patches of {args.clips} shared ff-valid clips; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'graph':<42}{'CPU ms/patch':>13}{'MAE':>10}{'max |d|':>10}{'top tag =':>11}")
    for k, out in outputs.items():
        err = np.abs(out - ref)
        same = float(np.mean(out.argmax(1) == ref.argmax(1)))
        print(f"{k:<42}{1e3 * statistics.median(cpu[k]):13.1f}{err.mean():10.1e}"
              f"{err.max():10.1e}{same:11.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
