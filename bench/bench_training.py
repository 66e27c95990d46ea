"""Timings of the training pipeline on this machine (printed, not asserted).

    .venv/bin/python bench/bench_training.py [--data ../shared/gtzan] [--run runs/gtzan-hybrid]

1. Feature extraction of every clip, from scratch (an empty temporary cache),
   with 2 worker processes — target: 323 clips in under 2 minutes on 2 cores.
2. Training throughput of the default network (seconds per epoch of 2048 windows).
3. The times recorded by the last full run in ``--run`` (final training — target
   under 30 minutes — cross-validation folds and the Optuna study), when present.
4. Inference: the shipped hybrid bundle's LiteRT model, ms per window and per 10-window track.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def bench_extraction(data: Path, jobs: int) -> None:
    from model_training import dataset
    from model_training.hybrid import cache

    clips = dataset.discover(data).clips
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = cache.extract(clips, [cache.ORIGINAL], cache_dir=tmp, jobs=jobs, progress=False)
        seconds = time.perf_counter() - start
    n = len(result.features)
    print(
        f"feature extraction: {n} clips in {seconds:.1f} s with {jobs} processes "
        f"({n / seconds:.1f} clips/s; target < 120 s for 323)"
    )


def bench_training_step() -> None:
    import numpy as np

    from model_training.hybrid.train import train_model
    from model_training.hybrid.windows import WindowSet

    rng = np.random.default_rng(0)
    n = 1024
    ws = WindowSet(
        rng.standard_normal((n, 130, 102)).astype(np.float32),
        rng.integers(0, 10, n),
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        [f"t{i}" for i in range(n)],
        rng.integers(0, 10, n),
    )
    valid = ws.subset(ws.track_ids[:128])
    result = train_model(
        {}, ws, valid, epochs=3, patience=3, windows_per_epoch=2048, progress=False
    )
    per_epoch = result.seconds / 3
    print(
        f"training: {per_epoch:.1f} s per epoch of 2048 windows (default network, "
        f"{result.model.count_params()} parameters; first epoch includes graph tracing)"
    )


def report_run(run: Path) -> None:
    def load(name: str):
        path = run / name
        return json.loads(path.read_text()) if path.is_file() else None

    final, cv, tune = load("final/history.json"), load("cv.json"), load("tune.json")
    if final:
        print(
            f"final training (last run): {final['train_seconds'] / 60:.1f} min, "
            f"{final['epochs_run']} epochs, best {final['best_epoch']} (target < 30 min)"
        )
    if cv:
        times = [f["train_seconds"] for f in cv["folds"]]
        print(
            f"cross-validation (last run): {len(times)} folds, {sum(times) / 60:.1f} min "
            f"of training"
        )
    if tune:
        seconds = [t.get("seconds") for t in tune["trials"] if t.get("seconds")]
        print(
            f"tuning (last run): {tune['complete']} complete + {tune['pruned']} pruned trials; "
            f"last session {tune['session_seconds'] / 60:.1f} min; complete trials took "
            f"{sum(seconds) / max(len(seconds), 1) / 60:.1f} min on average"
        )


def bench_inference() -> None:
    import numpy as np

    from genrefy_tagger.listening.kinds.hybrid import HybridModel
    from genrefy_tagger.listening.model import bundled_models, load_bundle

    bundle = load_bundle(bundled_models()["hybrid"])
    predictor = HybridModel(bundle, backend="litert")
    x = np.random.default_rng(0).standard_normal((100, 130, 102)).astype(np.float32)
    predictor.predict(x[:10])
    start = time.perf_counter()
    predictor.predict(x)
    ms = (time.perf_counter() - start) * 1000 / len(x)
    print(
        f"inference ({bundle.tag}, LiteRT, 1 thread): {ms:.2f} ms per window, "
        f"{10 * ms:.0f} ms per 10-window track"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "gtzan-hybrid")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    from model_training.dataset import default_data_dir

    data = args.data or (
        default_data_dir() if os.environ.get("GENREFY_GTZAN") else ROOT.parent / "shared" / "gtzan"
    )
    print(f"machine: {os.cpu_count()} CPUs visible")
    bench_extraction(data, args.jobs)
    if not args.skip_training:
        bench_training_step()
    report_run(args.run)
    bench_inference()


if __name__ == "__main__":
    main()
