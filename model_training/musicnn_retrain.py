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

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.config import GTZAN_GENRES
from genrefy_tagger.vote import calibrate

from .musicnn_fidelity import Taggrams
from .musicnn_head import HeadParams, keras_predict, scores, track_probabilities, train_head

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
