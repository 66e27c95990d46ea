"""Hyperparameter search: Optuna TPE with median pruning, resumable.

The study lives in SQLite (``<run>/tune/study.db``): an interrupted search picks
up where it stopped, and ``--trials`` counts finished trials (complete or pruned)
across sessions.

Objective: track-level macro-F1 (mean vote) on the held-out side of the first
``n_folds`` cross-validation folds of the *development* clips — the held-out test
clips are never loaded here. Early stopping inside a trial uses clips carved
from the fold's training side, never the clips being scored. After every epoch
the current score is reported so the median pruner can stop hopeless trials.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import pool_tracks, scores
from .network import DEFAULT_HP
from .train import fit_clips
from .windows import WindowSet

STUDY_NAME = "gtzan-hybrid"
#: How long a trial trains (short, so that a study tries many settings): at most this many
#: epochs of ``TRIAL_WINDOWS`` windows, stopping after ``TRIAL_PATIENCE`` without progress.
TRIAL_EPOCHS, TRIAL_PATIENCE, TRIAL_WINDOWS = 20, 6, 1024
#: What the shipped hybrid (1.2.0) changes from the defaults; chosen on track-split CV for 1.1.0.
SHIPPED_HP: dict[str, Any] = {"mask": 16, "mixup": 0.4}


def suggest(trial: Any) -> dict[str, Any]:
    """The search space (kept small: every trial costs CPU minutes)."""
    return {
        "filters": trial.suggest_categorical("filters", [8, 12]),
        "lstm_units": trial.suggest_categorical("lstm_units", [16, 32, 48]),
        "attention_units": trial.suggest_categorical("attention_units", [16, 32]),
        "conv_dropout": trial.suggest_float("conv_dropout", 0.0, 0.3),
        "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        "l2": trial.suggest_float("l2", 1e-5, 1e-3, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 7e-4, 4e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.15),
        "stats_units": trial.suggest_categorical("stats_units", [32, 64, 96]),
        "mask": trial.suggest_categorical("mask", [0, 8, 16, 24]),
        "mixup": trial.suggest_categorical("mixup", [0.0, 0.2, 0.4]),
        "center": trial.suggest_categorical("center", [0, 1]),
    }


def track_macro_f1(probs: np.ndarray, windows: WindowSet, *, rule: str = "mean") -> float:
    """Track-level macro-F1 of window probabilities (rows of ``windows``)."""
    pooled = pool_tracks(probs, windows.track, len(windows.track_ids), rule=rule)
    return scores(windows.track_labels, pooled.argmax(1))["macro_f1"]


def fit_and_score(
    hp: dict[str, Any],
    windows: WindowSet,
    fit_ids: Sequence[str],
    held: WindowSet,
    *,
    seed: int,
    **fit: Any,
) -> tuple[float, int]:
    """Train on ``fit_ids`` as a trial does (early stopping on a carve of them) and return
    the held-out track macro-F1 and the best epoch."""
    fitted = fit_clips(hp, windows, fit_ids, seed=seed, progress=False, **fit)
    return track_macro_f1(fitted.predict(held), held), fitted.result.best_epoch


def make_objective(
    windows: WindowSet,
    folds: Sequence[tuple[list[str], list[str]]],
    *,
    epochs: int,
    patience: int,
    windows_per_epoch: int,
    seed: int,
):
    """The Optuna objective over ``folds`` (``[(train ids, held-out ids), ...]``)."""
    import optuna

    fit = {"epochs": epochs, "patience": patience, "windows_per_epoch": windows_per_epoch}

    def objective(trial: optuna.Trial) -> float:
        hp = suggest(trial)
        fold_scores, fold_epochs = [], []
        start = time.perf_counter()
        for f, (fit_ids, held_ids) in enumerate(folds):
            held = windows.subset(held_ids, augmented=False)

            def on_epoch(epoch: int, predict_fn: Any, logs: dict, f: int = f, held=held) -> None:
                value = track_macro_f1(predict_fn(held), held)
                step = f * epochs + epoch  # one step axis across folds, same for every trial
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"fold {f} epoch {epoch + 1}: macro-F1 {value:.3f}")

            score, best_epoch = fit_and_score(
                hp, windows, fit_ids, held, seed=seed + f, on_epoch=on_epoch, **fit
            )
            fold_scores.append(score)
            fold_epochs.append(best_epoch)
            trial.set_user_attr("fold_macro_f1", fold_scores)
        trial.set_user_attr("best_epochs", fold_epochs)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
        return float(np.mean(fold_scores))

    return objective


def tune(
    windows: WindowSet,
    folds: Sequence[tuple[list[str], list[str]]],
    *,
    study_dir: str | Path,
    trials: int = 30,
    timeout: float | None = None,
    epochs: int = TRIAL_EPOCHS,
    patience: int = TRIAL_PATIENCE,
    windows_per_epoch: int = TRIAL_WINDOWS,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the study until ``trials`` trials have finished or ``timeout`` s pass.

    Returns a summary: best value, best hyperparameters (merged into the defaults),
    counts of complete / pruned trials, and wall time of this session.
    """
    import optuna
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{study_dir / 'study.db'}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=6),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=6),
    )
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    if not study.trials:
        # Start from the hand-picked defaults so the search can only improve on them.
        study.enqueue_trial(dict(DEFAULT_HP))
        study.enqueue_trial({**DEFAULT_HP, **SHIPPED_HP})
    done_before = len(study.get_trials(states=finished))
    bar = tqdm(total=trials, initial=min(done_before, trials), desc="trials", disable=not progress)

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update()
        best = study.best_value if study.get_trials(states=(TrialState.COMPLETE,)) else float("nan")
        bar.set_postfix(best=f"{best:.3f}", last=trial.state.name.lower())

    start = time.perf_counter()
    if done_before < trials:
        study.optimize(
            make_objective(
                windows,
                folds,
                epochs=epochs,
                patience=patience,
                windows_per_epoch=windows_per_epoch,
                seed=seed,
            ),
            timeout=timeout,
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished), tick],
            gc_after_trial=True,
        )
    bar.close()
    return summarize(study, seconds=time.perf_counter() - start)


def reseed(
    windows: WindowSet,
    folds: Sequence[tuple[list[str], list[str]]],
    *,
    study_dir: str | Path,
    trials: Sequence[int],
    seeds: Sequence[int],
    epochs: int = TRIAL_EPOCHS,
    patience: int = TRIAL_PATIENCE,
    windows_per_epoch: int = TRIAL_WINDOWS,
) -> dict[str, Any]:
    """Score the settings of some finished trials again, with fresh seeds, on ``folds``.

    A trial's value is one seed's, and seed noise on small validation sets can be as
    wide as the whole study's spread; the best trial is partly luck. This re-runs the
    candidates exactly as a trial does (same folds, epochs, carve) and picks the best
    mean over ``seeds``.
    """
    import optuna

    fit = {"epochs": epochs, "patience": patience, "windows_per_epoch": windows_per_epoch}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{Path(study_dir) / 'study.db'}"
    )
    by_number = {t.number: t for t in study.trials}
    unknown = sorted(set(trials) - set(by_number))
    if unknown:
        raise ValueError(f"no trials {unknown} in the study")
    results: dict[str, Any] = {}
    for number in trials:
        hp = {**DEFAULT_HP, **by_number[number].params}
        scores = []
        for seed in seeds:
            per_fold = []
            for f, (fit_ids, held_ids) in enumerate(folds):
                held = windows.subset(held_ids, augmented=False)
                per_fold.append(fit_and_score(hp, windows, fit_ids, held, seed=seed + f, **fit)[0])
            scores.append(float(np.mean(per_fold)))
        results[str(number)] = {
            "study_value": by_number[number].value,
            "seed_values": scores,
            "mean": float(np.mean(scores)),
            "hp": hp,
        }
    best = max(results, key=lambda k: results[k]["mean"])
    return {
        "objective": "mean track-level macro-F1 (mean vote) over the tuning folds, per seed",
        "seeds": list(seeds),
        "trials": results,
        "best_trial": int(best),
        "best_hp": results[best]["hp"],
    }


def summarize(study: Any, *, seconds: float = 0.0) -> dict[str, Any]:
    """What the study found, as JSON-ready data."""
    from optuna.trial import TrialState

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    out: dict[str, Any] = {
        "study": study.study_name,
        "objective": "mean track-level macro-F1 (mean vote) over the tuning folds",
        "complete": len(complete),
        "pruned": len(pruned),
        "session_seconds": round(seconds, 1),
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                **t.user_attrs,
            }
            for t in study.trials
        ],
    }
    if complete:
        best = study.best_trial
        out["best_value"] = best.value
        out["best_trial"] = best.number
        out["best_hp"] = {**DEFAULT_HP, **best.params}
    return out
