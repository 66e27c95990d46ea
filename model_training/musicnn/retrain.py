"""Retrain the musicnn genre head on all the data, calibrate it, pick an honest threshold.

Training data: the published MSD_musicnn taggrams of the full ff-train split (443
tracks) plus the port's taggrams of the shared clips in ff-train or in no split,
as the normalised tagger hears them, each with production-style copies
(:mod:`model_training.musicnn.data`, :mod:`model_training.production_augment`).
Validation: the shared ff-valid clips through the tagger's own window plan — it
chooses the epoch count, fits the temperature and the threshold. ff-test is read
once, for the record (published taggrams, 290 tracks).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.listening.vote import calibrate
from genrefy_tagger.reading.config import GTZAN_GENRES

from ..calibration import calibration_report
from ..litert import export_litert
from .data import PORT_CACHE, load_variant
from .fidelity import Taggrams, load_published
from .head import (
    HeadParams,
    ensemble,
    keras_predict,
    spread_indices,
    track_probabilities,
    train_head,
)
from .metrics import confusion_png, scores


def concat(*sets: Taggrams) -> Taggrams:
    """Tracks of several sets, one after the other."""
    return Taggrams(
        tuple(t for s in sets for t in s.tracks),
        np.concatenate([s.labels for s in sets]),
        tuple(p for s in sets for p in s.patches),
    )


def train_members(
    params: HeadParams,
    train: Taggrams,
    valid: Taggrams,
    *,
    members: int,
    max_epochs: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[list[Any], dict[str, Any]]:
    """Train ``members`` heads for ``max_epochs`` epochs, validating every epoch.

    The epoch count is chosen on the members' mean validation accuracy (3-epoch moving
    average); every member then gets its weights of that epoch. Returns the members and
    the curves.
    """
    from dataclasses import replace

    params = replace(params, patience=max_epochs + 1)
    heads, curves, snapshots = [], [], []
    for m in range(members):
        accs: list[float] = []
        weights: list[list[np.ndarray]] = []

        def validate(model: Any, accs: list = accs, weights: list = weights) -> float:
            p = track_probabilities(keras_predict(model), valid, params.seq_len, mode="windows")
            accs.append(float((p.argmax(1) == valid.labels).mean()))
            weights.append(model.get_weights())
            return 0.0  # never "improves": no early stop, no restore

        head, _ = train_head(
            params, train, validate=validate, epochs=max_epochs, seed=seed + m,
            name=f"head_{m}", log=lambda s: None,
        )  # fmt: skip
        heads.append(head)
        curves.append(accs)
        snapshots.append(weights)
        log(f"  member {m}: ff-valid accuracy by epoch {np.round(accs, 3).tolist()}")
    best, smooth = chosen_epoch(np.asarray(curves))
    for head, weights in zip(heads, snapshots, strict=True):
        head.set_weights(weights[best])
    return heads, {
        "curves": [list(map(float, c)) for c in curves],
        "mean_curve": np.mean(curves, axis=0).tolist(),
        "epochs": best + 1,
        "smoothed_accuracy": float(smooth[best]),
    }


def chosen_epoch(curves: np.ndarray) -> tuple[int, np.ndarray]:
    """The epoch (0-based) every member keeps, and the curve it was chosen on.

    curves: (members, epochs) validation accuracies. The members' mean is smoothed with a
    3-epoch moving average (edges repeated), so one lucky epoch does not decide.
    """
    mean_curve = curves.mean(0)
    smooth = np.convolve(np.pad(mean_curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return int(np.argmax(smooth)), smooth


def unusable_clips(gtzan: Path, cache: Path) -> dict[str, str]:
    """Shared clips the head must not train on, and why: repeats of another clip's
    recording, and unlisted clips whose artist may be scored (:func:`plan.left_out`)."""
    from ..dataset import discover
    from ..plan import left_out_of

    clips = discover(gtzan, check_audio=False).clips
    return left_out_of(clips, "fault-filtered+unlisted", cache_dir=cache, progress=False)[0]


@dataclass(frozen=True)
class HeadData:
    """What the head learns from and is validated on."""

    published: Taggrams  # published taggrams of ff-train
    port: list[Taggrams]  # per variant: the port's taggrams of the usable non-valid clips
    valid: Taggrams  # the shared ff-valid clips through the tagger's window plan
    left_out: dict[str, str]  # track id → why it is not trained on

    @property
    def train(self) -> Taggrams:
        return concat(self.published, *self.port)


def head_data(gtzan: Path, variants: tuple[str, ...], cache: Path = PORT_CACHE) -> HeadData:
    """Load the published and port taggrams the way ``musicnn-retrain`` trains on them."""
    published = load_published(gtzan / "musicnn_taggrams" / "ff_train_taggrams.npz")
    unused = unusable_clips(gtzan, cache)
    port = []
    for v in variants:
        data, split = load_variant(cache / f"{v}.npz")
        port.append(data.subset((split != "valid") & ~np.isin(data.tracks, list(unused))))
    windows, split = load_variant(cache / "windows.npz")
    return HeadData(published, port, windows.subset(split == "valid"), unused)


def genre_counts(labels: np.ndarray) -> dict[str, int]:
    return {g: int((labels == i).sum()) for i, g in enumerate(GTZAN_GENRES) if (labels == i).any()}


# --------------------------------------------------------------------------- the head


def retrain_bundle(
    bundle: Path,
    gtzan: Path,
    *,
    variants: tuple[str, ...],
    members: int,
    max_epochs: int,
    seed: int = 0,
    cache: Path = PORT_CACHE,
    extra: Taggrams | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, choose the epochs, calibrate, threshold, test once on ff-test, write the head.

    ``extra``: more training tracks (the allmusic previews of
    :mod:`model_training.musicnn.allmusic_head`); the bundle then says so.
    """
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.listening.model import write_bundle_json

    meta = json.loads((bundle / "bundle.json").read_text())
    params = HeadParams(**meta["head"]["params"])
    data = head_data(gtzan, variants, cache)
    published, port, valid, unused = data.published, data.port, data.valid, data.left_out
    for tid, why in sorted(unused.items()):
        log(f"left out {tid}: {why}")
    train = data.train if extra is None else concat(data.train, extra)
    log(f"training on {len(train.tracks)} sequences' tracks: published {len(published.tracks)}"
        f" + port {[len(p.tracks) for p in port]} ({', '.join(variants)}); "
        f"validating on {len(valid.tracks)} ff-valid clips")  # fmt: skip
    heads, info = train_members(
        params, train, valid, members=members, max_epochs=max_epochs, seed=seed, log=log
    )
    model = ensemble(heads, params.seq_len)
    model.save(bundle / "head.keras")
    export_litert(model, bundle / "head.tflite")

    predictor = MusicnnPredictor(bundle)  # LiteRT head, exactly as tagging runs it
    p_valid = np.stack([predictor.head_probabilities(p).mean(0) for p in valid.patches])
    report = bundle / "report"
    calibration = calibration_report(p_valid, valid.labels, report, "ff_valid",
                                     f"ff-valid, {len(valid.tracks)} shared clips")  # fmt: skip
    log(f"calibration: {calibration}")

    test = load_published(gtzan / "musicnn_taggrams" / "ff_test_taggrams.npz")
    n_win = int(meta.get("analysis", {}).get("max_windows", 10))
    p_test = np.stack([
        calibrate(predictor.head_probabilities(p[spread_indices(len(p), n_win)]).mean(0),
                  calibration["temperature"]) for p in test.patches
    ])  # fmt: skip
    test_scores = scores(test.labels, p_test)
    acc, mf1 = test_scores["accuracy"], test_scores["macro_f1"]
    log(f"ff-test once (290 published taggrams, {n_win} spread patches): "
        f"accuracy {acc:.3f}, macro-F1 {mf1:.3f}")  # fmt: skip
    threshold = calibration["threshold"]
    # A new version, so files tagged by the previous head are re-analysed, not skipped.
    meta["model_version"] = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d.%H%M")
    meta["min_confidence"] = threshold["threshold"]
    meta["calibration"] = {
        "method": (
            "temperature scaling of the pooled probabilities "
            "(genrefy_tagger.listening.vote.calibrate)"
        ),
        **{k: calibration[k] for k in ("temperature", "fitted_on", "ece_raw", "ece_calibrated")},
        "threshold_rule": "lowest threshold whose kept validation tracks are >= 95 % right",
        "threshold_choice": threshold,
    }
    meta["head"].update({"epochs": info["epochs"], "members": members})
    meta["head"].pop("trained_with", None)
    if extra is not None:
        meta["head"]["trained_with"] = (
            f"{len(extra.tracks)} allmusic tracks ({len(set(extra.tracks))} previews, "
            "level-normalised and one production-style copy each)"
        )
    meta["training_data"]["head"] = (
        f"published MSD_musicnn taggrams of ff-train ({len(published.tracks)} tracks) + the "
        f"port's taggrams of the {len(port[0].tracks) if port else 0} shared clips in ff-train or "
        f"no split, level-normalised, with production-style copies ({', '.join(variants)}); "
        f"{len(unused)} clips left out (repeated recordings, unlisted clips of scored artists)"
        + ("" if extra is None else f"; + {meta['head']['trained_with']}")
    )
    meta["training_data"]["left_out"] = unused
    meta["training_data"]["validation"] = (
        f"{len(valid.tracks)} shared ff-valid clips through the tagger's window plan: epochs, "
        "temperature and threshold"
    )
    meta["musicnn_config"] = predictor.config.to_dict()
    metrics = {
        "ff_valid_106": scores(valid.labels, p_valid),
        "ff_test_290_published_once": test_scores,
        "epoch_curves": info,
        "calibration": calibration,
    }
    # Figures of the previous head are stale now: bench/model_figures.py --write re-measures.
    meta["metrics"] = {
        "ff_valid_106": {k: round(metrics["ff_valid_106"][k], 4) for k in ("accuracy", "macro_f1")},
        "ff_test_290_published_once": {
            k: round(test_scores[k], 4) for k in ("accuracy", "macro_f1")
        },  # fmt: skip
    }
    write_bundle_json(bundle, meta)
    for stale in ("confusion_ff_test_all.png", "tuning_choice.json"):
        (report / stale).unlink(missing_ok=True)
    title = f"ff-test (290 tracks), shipped head on {n_win} spread published patches"
    confusion_png(test.labels, p_test, report / "confusion_ff_test.png", title)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return meta
