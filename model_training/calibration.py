"""Confidence thresholds and temperature calibration: where the tagger abstains.

Every rule here reads validation predictions only (never a test set):

* :func:`choose_min_confidence` (hybrid): halve the error rate, abstaining on at most
  a quarter of the tracks;
* :func:`min_confidence_for_accuracy` (musicnn head): lowest 0.05 step whose kept
  tracks reach a target accuracy;
* :func:`choose_threshold` (musicnn retrain): lowest 0.01 step whose kept tracks reach
  a target precision, keeping at least ``MIN_COVERAGE`` of them;
* :func:`fit_temperature`: the temperature of :func:`genrefy_tagger.listening.vote.calibrate`
  minimising the log-loss, with :func:`expected_calibration_error` and
  :func:`reliability_png` to show the result;
* :func:`calibration_report`: all of that for one validation set (both models' bundles).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.listening.vote import calibrate

#: Smallest share of validation tracks the threshold must keep (else the target is unreachable).
MIN_COVERAGE = 0.2


def choose_min_confidence(
    confidence: np.ndarray, correct: np.ndarray, *, max_abstain: float = 0.25
) -> dict[str, Any]:
    """Pick the confidence below which the tagger abstains.

    Rule: the lowest threshold at which the accuracy of the tracks kept is at least
    halfway from the overall accuracy to 1 (the error rate on written tags is
    halved), as long as no more than ``max_abstain`` of the tracks are held back;
    if no threshold gets there, the one with the best kept accuracy within that
    abstain budget.

    Parameters
    ----------
    confidence : (n_tracks,) pooled top probability of each held-out track
    correct : (n_tracks,) bool, whether the top genre was right
    """
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    overall = float(correct.mean())
    target = overall + (1.0 - overall) / 2
    grid = np.round(np.arange(0.0, 0.96, 0.05), 2)
    table = []
    for t in grid:
        kept = confidence >= t
        table.append(
            {
                "threshold": float(t),
                "abstain_rate": float(1 - kept.mean()),
                "kept_accuracy": float(correct[kept].mean()) if kept.any() else float("nan"),
            }
        )
    allowed = [row for row in table if row["abstain_rate"] <= max_abstain]
    hits = [row for row in allowed if row["kept_accuracy"] >= target]
    chosen = hits[0] if hits else max(allowed, key=lambda row: row["kept_accuracy"])
    return {
        "min_confidence": chosen["threshold"],
        "abstain_rate": chosen["abstain_rate"],
        "kept_accuracy": chosen["kept_accuracy"],
        "overall_accuracy": overall,
        "target_kept_accuracy": target,
        "rule": (
            "lowest threshold whose kept-track accuracy halves the error rate, "
            f"abstaining on at most {max_abstain:.0%} of tracks"
        ),
        "table": table,
    }


def min_confidence_for_accuracy(labels: np.ndarray, probs: np.ndarray, target: float = 0.9) -> dict:
    """Lowest threshold whose kept tracks (confidence ≥ it) are ≥ ``target`` accurate."""
    conf, right = probs.max(1), probs.argmax(1) == labels
    for t in np.round(np.arange(0.0, 1.0, 0.05), 2):
        keep = conf >= t
        if keep.any() and right[keep].mean() >= target:
            return {
                "min_confidence": float(t),
                "target_accuracy": target,
                "kept": float(keep.mean()),
                "kept_accuracy": float(right[keep].mean()),
            }
    return {"min_confidence": 0.95, "target_accuracy": target, "kept": float((conf >= 0.95).mean())}


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


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true genre."""
    picked = np.asarray(probs)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def calibration_report(
    probs: np.ndarray, labels: np.ndarray, report: Path, name: str, title: str
) -> dict[str, Any]:
    """Fit the temperature, choose the threshold, draw the diagrams (raw and calibrated).

    Parameters
    ----------
    probs : (n_tracks, n_genres) pooled validation probabilities, uncalibrated
    labels : (n_tracks,) true genre indices
    """
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
        "log_loss_raw": log_loss(probs, labels),
        "log_loss_calibrated": log_loss(cal, labels),
        "threshold": threshold,
    }
