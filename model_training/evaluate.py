"""Scoring a model: chunk- and track-level metrics, vote rules, fold summaries, plots.

Track level is what matters (the tagger labels tracks): window probabilities are
pooled per track with :func:`genrefy_tagger.listening.vote.combine` — the tagger's own
function — by the ``mean`` or the ``logmean`` rule.

Macro-F1 is averaged over the genres present in the evaluated set's truth (the
74 fault-filtered test clips lack jazz, for example), so a genre with no test
clip neither helps nor hurts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.listening.vote import combine
from genrefy_tagger.reading.config import GTZAN_GENRES

VOTE_RULES = ("mean", "logmean")
LEAKY_LABEL = "leaky, for comparison only"


def pool_tracks(probs: np.ndarray, track: np.ndarray, n_tracks: int, *, rule: str) -> np.ndarray:
    """Pool window probabilities per track.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_windows, n_classes)]
    track : np.ndarray [shape=(n_windows,)] track index of each window

    Returns
    -------
    pooled : np.ndarray [shape=(n_tracks, n_classes)]; NaN rows for tracks without windows
    """
    out = np.full((n_tracks, probs.shape[1]), np.nan)
    for t in range(n_tracks):
        rows = probs[track == t]
        if len(rows):
            out[t] = combine(rows, rule=rule)
    return out


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 over the genres present in ``y_true``, a per-genre table, and
    the confusion matrix (rows: truth, columns: prediction, in ``GTZAN_GENRES`` order)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = sorted(set(y_true.tolist()))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(GTZAN_GENRES))), zero_division=0
    )
    per_genre = {
        g: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, g in enumerate(GTZAN_GENRES)
        if s[i] > 0
    }
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        ),
        "genres_present": [GTZAN_GENRES[i] for i in present],
        "per_genre": per_genre,
        "confusion": confusion_matrix(
            y_true, y_pred, labels=list(range(len(GTZAN_GENRES)))
        ).tolist(),
    }


def evaluate_predictions(
    probs: np.ndarray, y: np.ndarray, track: np.ndarray, track_labels: np.ndarray
) -> dict[str, Any]:
    """Chunk-level scores and track-level scores under each vote rule.

    Parameters
    ----------
    probs : (n_windows, n_classes) window probabilities of unaugmented windows
    y, track : (n_windows,) label and track index of each window
    track_labels : (n_tracks,) label of each track
    """
    out: dict[str, Any] = {"chunk": scores(y, probs.argmax(1)), "track": {}}
    for rule in VOTE_RULES:
        pooled = pool_tracks(probs, track, len(track_labels), rule=rule)
        ok = ~np.isnan(pooled[:, 0])
        out["track"][rule] = scores(track_labels[ok], pooled[ok].argmax(1))
        out["track"][rule]["confidence"] = pooled[ok].max(1).tolist()
        out["track"][rule]["correct"] = (pooled[ok].argmax(1) == track_labels[ok]).tolist()
    return out


def choose_vote(results: Sequence[dict[str, Any]]) -> tuple[str, dict[str, dict[str, float]]]:
    """The vote rule with the higher mean track-level macro-F1 over held-out folds
    (accuracy breaks a tie; ``mean`` wins a full tie: it is the simpler rule)."""
    table = {
        rule: {
            "macro_f1": float(np.mean([r["track"][rule]["macro_f1"] for r in results])),
            "accuracy": float(np.mean([r["track"][rule]["accuracy"] for r in results])),
        }
        for rule in VOTE_RULES
    }
    best = max(VOTE_RULES, key=lambda k: (table[k]["macro_f1"], table[k]["accuracy"], k == "mean"))
    return best, table


def summarize_folds(results: Sequence[dict[str, Any]], *, rule: str) -> dict[str, Any]:
    """Mean ± std over folds of track-level accuracy, macro-F1 and per-genre F1."""

    def ms(values: Sequence[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    tracks = [r["track"][rule] for r in results]
    genres = [g for g in GTZAN_GENRES if all(g in t["per_genre"] for t in tracks)]
    return {
        "folds": len(results),
        "vote": rule,
        "track_accuracy": ms([t["accuracy"] for t in tracks]),
        "track_macro_f1": ms([t["macro_f1"] for t in tracks]),
        "chunk_accuracy": ms([r["chunk"]["accuracy"] for r in results]),
        "chunk_macro_f1": ms([r["chunk"]["macro_f1"] for r in results]),
        "per_genre_f1": {g: ms([t["per_genre"][g]["f1"] for t in tracks]) for g in genres},
    }


def per_genre_table(result: dict[str, Any]) -> str:
    """A plain-text precision/recall/F1 table of one ``scores`` result."""
    lines = [f"{'genre':<10} {'prec':>5} {'rec':>5} {'f1':>5} {'n':>4}"]
    for g, row in result["per_genre"].items():
        lines.append(
            f"{g:<10} {row['precision']:5.2f} {row['recall']:5.2f} {row['f1']:5.2f} "
            f"{row['support']:4d}"
        )
    lines.append(f"{'accuracy':<10} {result['accuracy']:5.3f}   macro-F1 {result['macro_f1']:.3f}")
    return "\n".join(lines)


def plot_confusion(confusion: Sequence[Sequence[int]], path: str | Path, *, title: str) -> Path:
    """Save a confusion-matrix PNG (rows: truth, columns: prediction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(GTZAN_GENRES)), GTZAN_GENRES, rotation=45, ha="right")
    ax.set_yticks(range(len(GTZAN_GENRES)), GTZAN_GENRES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_curves(histories: dict[str, dict[str, list[float]]], path: str | Path) -> Path:
    """Save loss and accuracy per epoch (training and validation) for each named run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax_loss.plot(epochs, h["loss"], color=color, alpha=0.5, label=f"{name} train")
        ax_loss.plot(epochs, h["val_loss"], color=color, label=f"{name} valid")
        ax_acc.plot(epochs, h["accuracy"], color=color, alpha=0.5)
        ax_acc.plot(epochs, h["val_accuracy"], color=color)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (faint: training)")
    ax_acc.set(xlabel="epoch", ylabel="chunk accuracy", title="accuracy (faint: training)")
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_json(data: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
