"""Retrain the musicnn genre head on all the data, calibrate it, pick an honest threshold.

Training data: the published MSD_musicnn taggrams of the full ff-train split (443
tracks) plus the port's taggrams of the shared clips in ff-train or in no split,
as the normalised tagger hears them, each with production-style copies
(:mod:`model_training.musicnn_data`, :mod:`model_training.production_augment`).
Validation: the shared ff-valid clips through the tagger's own window plan — it
chooses the epoch count, fits the temperature and the threshold. ff-test is read
once, for the record (published taggrams, 290 tracks).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from genrefy_tagger.config import GTZAN_GENRES
from genrefy_tagger.vote import calibrate

from .musicnn_fidelity import Taggrams
from .musicnn_head import (
    HeadParams,
    confusion_png,
    keras_predict,
    scores,
    track_probabilities,
    train_head,
)

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "musicnn"
DEFAULT_GTZAN = Path(__file__).resolve().parents[2] / "shared" / "gtzan"

#: Smallest share of validation tracks the threshold must keep (else the target is unreachable).
MIN_COVERAGE = 0.2


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
    mean_curve = np.mean(curves, axis=0)
    smooth = np.convolve(np.pad(mean_curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    best = int(np.argmax(smooth))
    for head, weights in zip(heads, snapshots, strict=True):
        head.set_weights(weights[best])
    return heads, {
        "curves": [list(map(float, c)) for c in curves],
        "mean_curve": mean_curve.tolist(),
        "epochs": best + 1,
        "smoothed_accuracy": float(smooth[best]),
    }


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the validation log-loss (grid 0.25 … 8, log-spaced)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
    idx = np.arange(len(labels))

    def nll(t: float) -> float:
        return float(-np.mean(np.log(np.clip(calibrate(probs, t)[idx, labels], 1e-12, 1.0))))

    return float(grid[int(np.argmin([nll(t) for t in grid]))])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    conf, right = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(ece)


def choose_threshold(probs: np.ndarray, labels: np.ndarray, target: float = 0.95) -> dict:
    """Lowest confidence threshold (0.01 steps) whose kept tracks are ≥ ``target`` right.

    Precision of the written genres = accuracy of the tracks kept. When no threshold
    keeping at least ``MIN_COVERAGE`` of the tracks reaches it, the best one that does
    is returned and flagged.
    """
    conf, right = probs.max(1), probs.argmax(1) == labels
    best = None
    for t in np.round(np.arange(0.0, 1.0, 0.01), 2):
        keep = conf >= t
        if keep.mean() < MIN_COVERAGE:
            break
        precision = float(right[keep].mean())
        entry = {"threshold": float(t), "precision": precision, "coverage": float(keep.mean()),
                 "n_kept": int(keep.sum()), "n": len(labels)}  # fmt: skip
        if precision >= target:
            return {**entry, "target": target, "reached": True}
        if best is None or precision > best["precision"]:
            best = entry
    return {**(best or {}), "target": target, "reached": False}


def reliability_png(
    probs: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str
) -> None:
    """Reliability diagram: accuracy against confidence in 10 bins, with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf, right = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, 11)
    centres, accs, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            centres.append(conf[inside].mean())
            accs.append(right[inside].mean())
            counts.append(int(inside.sum()))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centres, accs, "o-", label="model")
    for x, y, n in zip(centres, accs, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("confidence (top genre)")
    ax.set_ylabel("share right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}\nECE {expected_calibration_error(probs, labels):.3f}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibration_report(
    probs: np.ndarray, labels: np.ndarray, report: Path, name: str, title: str
) -> dict[str, Any]:
    """Fit the temperature, choose the threshold, draw the diagrams (raw and calibrated)."""
    temperature = fit_temperature(probs, labels)
    cal = calibrate(probs, temperature)
    threshold = choose_threshold(cal, labels)
    report.mkdir(parents=True, exist_ok=True)
    reliability_png(probs, labels, report / f"reliability_{name}_raw.png", f"{title}, raw")
    reliability_png(cal, labels, report / f"reliability_{name}.png",
                    f"{title}, temperature {temperature:.2f}")  # fmt: skip
    return {
        "temperature": round(temperature, 4),
        "fitted_on": title,
        "ece_raw": expected_calibration_error(probs, labels),
        "ece_calibrated": expected_calibration_error(cal, labels),
        "log_loss_raw": scores(labels, probs)["log_loss"],
        "log_loss_calibrated": scores(labels, cal)["log_loss"],
        "threshold": threshold,
    }


def genre_counts(labels: np.ndarray) -> dict[str, int]:
    return {g: int((labels == i).sum()) for i, g in enumerate(GTZAN_GENRES) if (labels == i).any()}


# --------------------------------------------------------------------------- the command

PORT_CACHE = Path(".cache") / "musicnn" / "port_v2"


def retrain_bundle(
    bundle: Path,
    gtzan: Path,
    *,
    variants: tuple[str, ...],
    members: int,
    max_epochs: int,
    seed: int = 0,
    cache: Path = PORT_CACHE,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, choose the epochs, calibrate, threshold, test once on ff-test, write the head."""
    from genrefy_tagger.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.model import write_bundle_json

    from .musicnn_data import load_variant
    from .musicnn_fidelity import load_published
    from .musicnn_head import ensemble, spread_indices
    from .musicnn_import import export_litert

    meta = json.loads((bundle / "bundle.json").read_text())
    params = HeadParams(**meta["head"]["params"])
    published = load_published(gtzan / "musicnn_taggrams" / "ff_train_taggrams.npz")
    port = []
    for v in variants:
        data, split = load_variant(cache / f"{v}.npz")
        port.append(data.subset(split != "valid"))
    windows, split = load_variant(cache / "windows.npz")
    valid = windows.subset(split == "valid")
    train = concat(published, *port)
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
        "method": "temperature scaling of the pooled probabilities (genrefy_tagger.vote.calibrate)",
        **{k: calibration[k] for k in ("temperature", "fitted_on", "ece_raw", "ece_calibrated")},
        "threshold_rule": "lowest threshold whose kept validation tracks are >= 95 % right",
        "threshold_choice": threshold,
    }
    meta["head"].update({"epochs": info["epochs"], "members": members})
    meta["training_data"]["head"] = (
        f"published MSD_musicnn taggrams of ff-train ({len(published.tracks)} tracks) + the "
        f"port's taggrams of the {len(port[0].tracks) if port else 0} shared clips in ff-train or "
        f"no split, level-normalised, with production-style copies ({', '.join(variants)})"
    )
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


@click.command("musicnn-retrain", short_help="Retrain the head on published and port taggrams.")
@click.option(
    "--gtzan",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("GENREFY_GTZAN", str(DEFAULT_GTZAN)),
)
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), default=BUNDLE_DIR)
@click.option(
    "--variants",
    default="norm,aug0",
    show_default=True,
    help="port taggram variants to add (model_training.musicnn_data)",
)
@click.option("--members", default=3, show_default=True)
@click.option("--max-epochs", default=12, show_default=True)
@click.option("--seed", default=0, show_default=True)
def musicnn_retrain_cmd(
    gtzan: Path, bundle: Path, variants: str, members: int, max_epochs: int, seed: int
) -> None:
    """Retrain the head on published + port taggrams; calibrate and threshold on ff-valid."""
    retrain_bundle(bundle, gtzan, variants=tuple(v for v in variants.split(",") if v),
                   members=members, max_epochs=max_epochs, seed=seed, log=click.echo)  # fmt: skip


@click.command("musicnn-port-data", short_help="Cache the port's taggrams of the non-test clips.")
@click.option(
    "--gtzan",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("GENREFY_GTZAN", str(DEFAULT_GTZAN)),
)
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), default=BUNDLE_DIR)
@click.option("--variants", default="windows,norm,aug0", show_default=True)
@click.option(
    "--aug-every",
    default=2,
    show_default=True,
    help="production-style copies of every N-th training clip",
)
@click.option(
    "--raw-every",
    default=4,
    show_default=True,
    help="unnormalised patches of every N-th ff-train clip (the fidelity re-check)",
)
@click.option("--threads", default=2, show_default=True)
def musicnn_port_data_cmd(
    gtzan: Path, bundle: Path, variants: str, aug_every: int, raw_every: int, threads: int
) -> None:
    """Cache the port's taggrams of the shared non-test clips (model_training.musicnn_data)."""
    from genrefy_tagger.lite import LiteRunner
    from genrefy_tagger.windows import WindowPolicy

    from .musicnn_data import build_variant, two_output_frontend

    meta = json.loads((bundle / "bundle.json").read_text())
    policy = WindowPolicy(max_windows=int(meta.get("analysis", {}).get("max_windows", 10)))
    frontend = two_output_frontend(bundle, PORT_CACHE / "frontend_tags_penult.tflite")
    lite = LiteRunner(frontend, threads=threads)
    for v in (v for v in variants.split(",") if v):
        splits, every = ("train", "valid", "none"), 1
        if v == "raw":
            splits, every = ("train",), raw_every
        elif v.startswith("aug"):
            splits, every = ("train", "none"), aug_every
        build_variant(gtzan, v, PORT_CACHE / f"{v}.npz", lite, splits=splits, policy=policy,
                      every=every, log=click.echo)  # fmt: skip
