"""Does the musicnn head gain from more ensemble members? (an experiment; ff-test never read)

Trains ``--members`` heads with the shipped recipe (``musicnn-retrain``'s data, settings,
``max_epochs`` and seeds ``seed, seed + 1, …``), keeping every member's ff-valid track
probabilities after every epoch. Then, for each ensemble size N, the members are cut
into disjoint groups of N (seeds in order), and each group is scored exactly as
``musicnn-retrain`` would ship it: the epoch with the best 3-epoch moving average of the
members' mean accuracy, probabilities averaged over members, a temperature fitted on
ff-valid, and the 95 %-precision threshold. Reported per size: the mean and range over
groups of accuracy, macro-F1, calibrated log-loss, and the coverage at that threshold
(in-sample: the threshold is chosen on the same clips, as the shipped one is).

    .venv/bin/python bench/musicnn_members.py --members 15 --sizes 1,3,5,15 --out runs/members
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrefy_tagger.listening.vote import calibrate  # noqa: E402
from model_training.calibration import choose_threshold, fit_temperature, log_loss  # noqa: E402
from model_training.musicnn.head import (  # noqa: E402
    HeadParams,
    keras_predict,
    track_probabilities,
    train_head,
)
from model_training.musicnn.metrics import scores  # noqa: E402
from model_training.musicnn.retrain import chosen_epoch, head_data  # noqa: E402

BUNDLE = ROOT / "genrefy_tagger" / "models" / "musicnn"


def member_curves(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """ff-valid track probabilities, shape (members, epochs, n_tracks, n_genres), and labels."""
    from dataclasses import replace

    meta = json.loads((BUNDLE / "bundle.json").read_text())
    params = HeadParams(**meta["head"]["params"])
    params = replace(params, patience=args.max_epochs + 1)
    data = head_data(args.gtzan, tuple(args.variants.split(",")))
    train, valid = data.train, data.valid
    print(f"train {len(train.tracks)} sequences' tracks, ff-valid {len(valid.tracks)}", flush=True)
    out = []
    for m in range(args.members):
        probs: list[np.ndarray] = []

        def validate(model, probs: list = probs) -> float:
            probs.append(track_probabilities(keras_predict(model), valid, params.seq_len,
                                             mode="windows"))  # fmt: skip
            return 0.0

        train_head(params, train, validate=validate, epochs=args.max_epochs,
                   seed=args.seed + m, log=lambda s: None)  # fmt: skip
        accs = [(p.argmax(1) == valid.labels).mean() for p in probs]
        print(f"member {m} (seed {args.seed + m}): {np.round(accs, 3).tolist()}", flush=True)
        out.append(np.stack(probs))
    return np.stack(out), valid.labels


def score_group(curves: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """One ensemble, chosen and calibrated as ``musicnn-retrain`` does."""
    epoch, _ = chosen_epoch((curves.argmax(-1) == labels).mean(-1))  # from (members, epochs)
    probs = curves[:, epoch].mean(0)
    t = fit_temperature(probs, labels)
    cal = calibrate(probs, t)
    s = scores(labels, cal)
    thr = choose_threshold(cal, labels)
    coverage = thr["coverage"] if thr["reached"] else 0.0
    return {"epoch": epoch + 1, "accuracy": s["accuracy"], "macro_f1": s["macro_f1"],
            "log_loss": log_loss(cal, labels), "temperature": t,
            "threshold": thr["threshold"], "coverage_95": coverage}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gtzan", type=Path, default=ROOT.parent / "shared" / "gtzan")
    ap.add_argument("--variants", default="norm,aug0")
    ap.add_argument("--members", type=int, default=15)
    ap.add_argument("--max-epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="1,3,5,15")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "members")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / f"curves_seed{args.seed}_{args.members}.npz"
    if cache.is_file():
        with np.load(cache) as f:
            curves, labels = f["curves"], f["labels"]
    else:
        curves, labels = member_curves(args)
        np.savez(cache, curves=curves, labels=labels)
    table = {}
    for n in map(int, args.sizes.split(",")):
        groups = [score_group(curves[i : i + n], labels) for i in range(0, len(curves) - n + 1, n)]
        keys = [k for k in groups[0] if k != "epoch"]
        table[n] = {"groups": groups,
                    **{k: [float(np.mean([g[k] for g in groups])),
                           float(np.min([g[k] for g in groups])),
                           float(np.max([g[k] for g in groups]))] for k in keys}}  # fmt: skip
        row = "  ".join(f"{k} {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for k, v in table[n].items()
                        if k != "groups")  # fmt: skip
        print(f"N={n:2d} ({len(groups)} groups): {row}", flush=True)
    (args.out / f"members_seed{args.seed}.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
