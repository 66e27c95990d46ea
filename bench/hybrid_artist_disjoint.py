"""Score hybrid settings on artists the model never heard (an experiment, not a test).

Trains on the run folder's fold 0 training side and scores its held-out side, exactly as a
tuning trial does (``model_training.hybrid.tune``'s ``TRIAL_*`` settings, early stopping on
15 % carved from the training clips; ``--epochs`` may allow longer), once per seed. With
the artist-disjoint plan of ``prepare --split fault-filtered+unlisted`` that is: train on
the 235 shared clips in ff-train or in no list that may be trained on (261 before repeated
recordings and unlisted clips of scored artists were left out), score the 106 ff-valid
clips, whose artists are all new.
ff-test is never read. The centring experiment (docs/training.md) ran this way::

    genrefy-train prepare --data ../shared/gtzan --out runs/tune-av --split fault-filtered+unlisted
    python bench/hybrid_artist_disjoint.py --out runs/tune-av --hp runs/tune-av/best_hp.json \\
        --set '{"center": 1}' --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from model_training.evaluate import pool_tracks
    from model_training.hybrid.steps import hyperparameters, run_windows
    from model_training.hybrid.train import fit_clips
    from model_training.hybrid.tune import (
        TRIAL_EPOCHS,
        TRIAL_PATIENCE,
        TRIAL_WINDOWS,
        track_macro_f1,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="run folder with plan.json")
    ap.add_argument("--hp", type=Path, required=True, help="hyperparameters (JSON)")
    ap.add_argument("--set", default="{}", help="JSON of hyperparameters to change")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=TRIAL_EPOCHS)
    ap.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    args = ap.parse_args()

    hp = hyperparameters(args.out, args.hp, json.loads(args.set))  # refuses unknown names
    kw = {"cache_dir": args.cache} if args.cache else {}
    _, plan, windows = run_windows(args.out, progress=False, **kw)
    fit_ids, held_ids = plan.folds[0]
    held = windows.subset(held_ids, augmented=False)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        fitted = fit_clips(hp, windows, fit_ids, seed=seed, epochs=args.epochs,
                           patience=TRIAL_PATIENCE, windows_per_epoch=TRIAL_WINDOWS,
                           progress=False)  # fmt: skip
        p = fitted.predict(held)
        pooled = pool_tracks(p, held.track, len(held.track_ids), rule="mean")
        rows.append({
            "seed": seed,
            "macro_f1": round(track_macro_f1(p, held), 4),
            "accuracy": round(float((pooled.argmax(1) == held.track_labels).mean()), 4),
            "best_epoch": fitted.result.best_epoch,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in ("macro_f1", "accuracy")}
    print(json.dumps({"hp": hp, "clips": {"train": len(fit_ids), "scored": len(held_ids)},
                      "mean": mean}))  # fmt: skip


if __name__ == "__main__":
    main()
