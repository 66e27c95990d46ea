"""The hybrid network's experiments: cross-validation, the leaky comparison, a test score.

The metrics are :mod:`model_training.evaluate`'s (model-independent); here models are
trained per fold (:mod:`~model_training.hybrid.train`) and scored on held-out tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..calibration import choose_min_confidence
from ..evaluate import LEAKY_LABEL, choose_vote, evaluate_predictions, scores, summarize_folds
from .train import fit_clips, predict, train_model
from .windows import WindowSet, fit_scaler, standardise


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
    ws = windows.subset(windows.track_ids, augmented=False)
    probs = predict(model, standardise(ws, mean, scale).x)
    result = evaluate_predictions(probs, ws.y, ws.track, ws.track_labels)
    result["vote"] = vote
    result["tracks"] = ws.track_ids
    return result
