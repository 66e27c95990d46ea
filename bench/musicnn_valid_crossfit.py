"""Would the musicnn head gain from training on the ff-valid clips too? (an experiment)

The shipped head trains on ff-train (published taggrams) + the port's taggrams of the
shared clips in ff-train or in no list, and keeps the 106 shared ff-valid clips for the
epoch count, the temperature and the threshold. ff-valid holds most of the shared
country and disco clips, so training on it looks attractive; this script measures it by
cross-fitting over ff-valid: K folds, each trained on the shipped set + the other folds'
ff-valid clips (``valid``: normalised taggrams; ``valid_aug``: + one production-style
copy of each), scored on its own fold through the tagger's window plan. ``base`` is the
shipped recipe (no ff-valid clips in training). ff-test is never read.

``--folds runs`` keeps runs of near-consecutive GTZAN ids together (GTZAN is ordered by
source album, so a run is mostly one artist); ``--folds contiguous`` cuts each genre's
sorted ids into K blocks, which splits artists across folds and flatters the result.

    .venv/bin/genrefy-train musicnn-port-data          # windows, norm, aug0 (cached)
    .venv/bin/python bench/musicnn_valid_crossfit.py --folds runs --conditions base,valid,valid_aug
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_training.musicnn.data import (  # noqa: E402
    PORT_CACHE,
    build_variant,
    load_variant,
    two_output_frontend,  # noqa: E402
)
from model_training.musicnn.fidelity import Taggrams, load_published  # noqa: E402
from model_training.musicnn.head import (  # noqa: E402
    HeadParams,
    keras_predict,
    track_probabilities,
    train_head,
)
from model_training.musicnn.metrics import scores  # noqa: E402
from model_training.musicnn.retrain import concat  # noqa: E402

BUNDLE = ROOT / "genrefy_tagger" / "models" / "musicnn"


def id_runs(tracks: tuple[str, ...], *, gap: int = 5) -> np.ndarray:
    """Group index per track: ids of one genre at most ``gap`` apart share a group."""
    groups, last, g = {}, {}, -1
    for t in sorted(tracks):
        genre, num = t.rsplit(".", 1)[0], int(t.rsplit(".", 1)[1])
        if genre not in last or num - last[genre] > gap:
            g += 1
        groups[t], last[genre] = g, num
    return np.array([groups[t] for t in tracks])


def folds_of(valid: Taggrams, k: int, how: str) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    fold = np.zeros(len(valid.tracks), int)
    if how == "runs":
        gid = id_runs(valid.tracks)
        for i, (_, te) in enumerate(GroupKFold(n_splits=k).split(gid, groups=gid)):
            fold[te] = i
        return fold
    for g in np.unique(valid.labels):
        idx = np.flatnonzero(valid.labels == g)
        idx = idx[np.argsort([valid.tracks[i] for i in idx])]
        for i, block in enumerate(np.array_split(idx, k)):
            fold[block] = i
    return fold


def valid_aug(gtzan: Path) -> Taggrams:
    """Production-style copy 0 of every ff-valid clip through the port (cached)."""
    from genrefy_tagger.listening.lite import LiteRunner
    from genrefy_tagger.reading.windows import WindowPolicy

    meta = json.loads((BUNDLE / "bundle.json").read_text())
    out = PORT_CACHE / "aug0_valid.npz"
    if not out.is_file():
        lite = LiteRunner(two_output_frontend(BUNDLE, PORT_CACHE / "frontend_tags_penult.tflite"))
        policy = WindowPolicy(max_windows=int(meta["analysis"]["max_windows"]))
        build_variant(gtzan, "aug0", out, lite, splits=("valid",), policy=policy)
    return load_variant(out)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gtzan", type=Path, default=ROOT.parent / "shared" / "gtzan")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--folds", choices=("runs", "contiguous"), default="runs")
    ap.add_argument("--conditions", default="base,valid,valid_aug")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "valid_crossfit")
    args = ap.parse_args()

    meta = json.loads((BUNDLE / "bundle.json").read_text())
    params = replace(HeadParams(**meta["head"]["params"]), patience=args.epochs + 1)
    published = load_published(args.gtzan / "musicnn_taggrams" / "ff_train_taggrams.npz")
    norm, nsplit = load_variant(PORT_CACHE / "norm.npz")
    aug0, _ = load_variant(PORT_CACHE / "aug0.npz")
    windows, wsplit = load_variant(PORT_CACHE / "windows.npz")
    valid = windows.subset(wsplit == "valid")
    base = concat(published, norm.subset(nsplit != "valid"), aug0)
    fold = folds_of(valid, args.k, args.folds)
    print(f"{len(valid.tracks)} ff-valid clips, fold sizes {np.bincount(fold).tolist()}")

    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for cond in args.conditions.split(","):
        probs = np.zeros((args.members, args.epochs, len(valid.tracks), 10))
        extra = [norm] + ([valid_aug(args.gtzan)] if cond == "valid_aug" else [])
        t0 = time.time()
        for k in [None] if cond == "base" else range(args.k):
            held = np.ones(len(valid.tracks), bool) if k is None else fold == k
            keep = {t for t, h in zip(valid.tracks, held, strict=True) if not h}
            train = base if k is None else concat(
                base, *(e.subset(np.array([t in keep for t in e.tracks])) for e in extra)
            )  # fmt: skip
            clips = valid.subset(held)
            for m in range(args.members):
                per_epoch: list[np.ndarray] = []

                def validate(model, per_epoch=per_epoch, clips=clips) -> float:
                    per_epoch.append(track_probabilities(
                        keras_predict(model), clips, params.seq_len, mode="windows"))  # fmt: skip
                    return 0.0

                train_head(params, train, validate=validate, epochs=args.epochs,
                           seed=args.seed + m, log=lambda s: None)  # fmt: skip
                for e, p in enumerate(per_epoch):
                    probs[m, e, held] = p
            took = time.time() - t0
            print(f"{cond} fold {k}: {len(train.tracks)} training tracks ({took:.0f} s)")
        rows = []
        for e in range(args.epochs):
            s = scores(valid.labels, probs[:, e].mean(0))
            member = np.mean([(probs[m, e].argmax(1) == valid.labels).mean()
                              for m in range(args.members)])  # fmt: skip
            rows.append({"epoch": e + 1, "accuracy": round(s["accuracy"], 4),
                         "macro_f1": round(s["macro_f1_present"], 4),
                         "log_loss": round(s["log_loss"], 4),
                         "member_accuracy": round(float(member), 4)})  # fmt: skip
            print(cond, rows[-1])
        results[cond] = rows
    name = f"{args.folds}_k{args.k}_seed{args.seed}.json"
    (args.out / name).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
