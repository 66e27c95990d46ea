"""Scoring a model: chunk- and track-level metrics, vote rules, thresholds, plots.

Track level is what matters (the tagger labels tracks): window probabilities are
pooled per track with :func:`genrefy_tagger.vote.combine` — the tagger's own
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

from genrefy_tagger.config import GTZAN_GENRES
from genrefy_tagger.vote import combine

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


# --- experiments -----------------------------------------------------------------------------


def cross_validate(
    hp: dict[str, Any],
    windows: Any,
    folds: Sequence[tuple[list[str], list[str]]],
    *,
    seed: int = 0,
    progress: bool = True,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Train one model per fold and score it on the fold's held-out tracks.

    Each fold's early stopping uses clips carved from its own training side. Also
    picks the vote rule and ``min_confidence`` from the pooled held-out predictions.
    """
    from tqdm.auto import tqdm

    from .train import fit_clips

    results, histories = [], {}
    for f, (fit_ids, held_ids) in enumerate(tqdm(folds, desc="folds", disable=not progress)):
        fitted = fit_clips(hp, windows, fit_ids, seed=seed + f, progress=progress, **train_kwargs)
        held = windows.subset(held_ids, augmented=False)
        result = evaluate_predictions(fitted.predict(held), held.y, held.track, held.track_labels)
        result["best_epoch"] = fitted.result.best_epoch
        result["train_seconds"] = round(fitted.result.seconds, 1)
        result["held_out"] = held.track_ids
        results.append(result)
        histories[f"fold {f + 1}"] = fitted.result.history
    vote, comparison = choose_vote(results)
    confidence = np.concatenate([r["track"][vote]["confidence"] for r in results])
    correct = np.concatenate([r["track"][vote]["correct"] for r in results])
    pooled_confusion = np.sum([r["track"][vote]["confusion"] for r in results], axis=0)
    return {
        "summary": summarize_folds(results, rule=vote),
        "vote": vote,
        "vote_comparison": comparison,
        "threshold": choose_min_confidence(confidence, correct),
        "confusion_all_folds": pooled_confusion.tolist(),
        "folds": results,
        "histories": histories,
    }


def leaky_chunk_accuracy(
    hp: dict[str, Any],
    windows: Any,
    track_ids: Sequence[str],
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Chunk accuracy when windows are split at random, ignoring tracks — LEAKY.

    Neighbouring 3-s chunks of one recording land in train and test, so this
    overstates what the model does on new music. It is measured only to show how
    much a random chunk split inflates the figure. Original windows only (no
    augmented copies), 10 % of the training windows for early stopping.
    """
    from .train import WindowSet, fit_scaler, predict, standardise, train_model

    ws = windows.subset(track_ids, augmented=False)
    order = np.random.default_rng(seed).permutation(len(ws))
    n_test = int(round(test_fraction * len(ws)))
    n_valid = int(round(0.1 * (len(ws) - n_test)))
    parts = np.split(order, [n_test, n_test + n_valid])

    def take(idx: np.ndarray) -> WindowSet:
        return WindowSet(
            ws.x[idx], ws.y[idx], ws.track[idx], ws.copy[idx], ws.track_ids, ws.track_labels
        )

    test, valid, train = (take(p) for p in parts)
    shared = len(set(test.track.tolist()) & set(train.track.tolist()))
    mean, scale = fit_scaler(train.x)
    result = train_model(
        hp,
        standardise(train, mean, scale),
        standardise(valid, mean, scale),
        seed=seed,
        progress=progress,
        **train_kwargs,
    )
    probs = predict(result.model, standardise(test, mean, scale).x)
    chunk = scores(test.y, probs.argmax(1))
    return {
        "label": LEAKY_LABEL,
        "chunk_accuracy": chunk["accuracy"],
        "chunk_macro_f1": chunk["macro_f1"],
        "test_windows": int(len(test)),
        "tracks_on_both_sides": shared,
        "train_seconds": round(result.seconds, 1),
    }


def evaluate_model(
    model: Any, mean: np.ndarray, scale: np.ndarray, windows: Any, *, vote: str
) -> dict[str, Any]:
    """Score a trained model on held-out windows (originals only); ``vote`` picks the
    track-level rule reported first (both are kept)."""
    from .train import predict, standardise

    ws = windows.subset(windows.track_ids, augmented=False)
    probs = predict(model, standardise(ws, mean, scale).x)
    result = evaluate_predictions(probs, ws.y, ws.track, ws.track_labels)
    result["vote"] = vote
    result["tracks"] = ws.track_ids
    return result
