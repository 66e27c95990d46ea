"""Tuning the musicnn head: Optuna over its settings, then a multi-seed re-check.

Never reads ff-test: trials are scored on the ff-train hold-out and the shared ff-valid
clips (:func:`model_training.musicnn.sets.validation_sets`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .head import HeadParams, keras_predict, track_probabilities, train_head

STUDY_NAME = "musicnn-head"


def objective(sets: dict[str, Any]) -> Any:
    """Optuna objective: mean of hold-out accuracy (10 spread patches) and ff-valid accuracy."""
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = HeadParams(
            lstm_units=trial.suggest_categorical("lstm_units", [32, 64, 96, 128]),
            attention_units=trial.suggest_categorical("attention_units", [16, 32, 64]),
            dropout=trial.suggest_float("dropout", 0.1, 0.6),
            input_noise=trial.suggest_float("input_noise", 0.0, 0.5),
            learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
            batch_size=trial.suggest_categorical("batch_size", [32, 64, 128]),
            k_min=trial.suggest_int("k_min", 2, 8),
            l2=trial.suggest_categorical("l2", [0.0, 1e-5, 1e-4, 1e-3]),
            samples_per_track=trial.suggest_categorical("samples_per_track", [2, 4, 8]),
        )

        def validate(model: Any) -> float:
            predict = keras_predict(model)
            hold = sets["holdout"]
            p_hold = track_probabilities(predict, hold, params.seq_len, mode="spread10")
            p_val = track_probabilities(
                predict, sets["valid_windows"], params.seq_len, mode="windows"
            )
            acc_hold = float((p_hold.argmax(1) == hold.labels).mean())
            acc_val = float((p_val.argmax(1) == sets["valid_windows"].labels).mean())
            trial.set_user_attr("last_holdout_acc", acc_hold)
            trial.set_user_attr("last_valid_acc", acc_val)
            return 0.5 * (acc_hold + acc_val)

        _, info = train_head(
            params,
            sets["fit"],
            validate=validate,
            trial=trial,
            seed=trial.number,
            log=lambda s: None,
        )
        trial.set_user_attr("best_epoch", info["best_epoch"])
        return info["best_val"]

    return objective


def run_study(
    sets: dict[str, Any], *, trials: int, storage: str, log: Callable[[str], None] = print
) -> Any:
    """Run (or resume) the study in ``storage`` until ``trials`` more trials have run."""
    import optuna

    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=6),
    )
    start = time.time()

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        log(
            f"trial {trial.number} {trial.state.name} value={trial.value} "
            f"params={trial.params} attrs={trial.user_attrs} "
            f"({time.time() - start:.0f} s)"
        )

    if trials:
        study.optimize(objective(sets), n_trials=trials, callbacks=[tick])
    return study


def recheck(
    study: Any,
    sets: dict[str, Any],
    *,
    top: int,
    seeds: int,
    epochs: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Re-train the ``top`` trials' settings with ``seeds`` seeds for ``epochs`` epochs each.

    A trial's value is the best of up to 40 noisy epoch scores on 89 + 81 tracks, so
    the ranking is mostly noise. Here every setting gets the same epochs and several
    seeds; we keep the per-epoch validation score of each seed and of the seeds'
    averaged probabilities (an ensemble), and pick the setting, epoch count and
    ensemble size by the seed-averaged curve (3-epoch moving average).
    """
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    best_trials = sorted(done, key=lambda t: -t.value)[:top]
    hold, valid = sets["holdout"], sets["valid_windows"]
    results = []
    for trial in best_trials:
        params = replace(HeadParams(**trial.params), max_epochs=epochs, patience=epochs + 1)
        per_seed: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for seed in range(seeds):
            probs: list[tuple[np.ndarray, np.ndarray]] = []

            def validate(model: Any, probs: list = probs, seq_len: int = params.seq_len) -> float:
                predict = keras_predict(model)
                ph = track_probabilities(predict, hold, seq_len, mode="spread10")
                pv = track_probabilities(predict, valid, seq_len, mode="windows")
                probs.append((ph, pv))
                return 0.0

            train_head(params, sets["fit"], validate=validate, seed=100 + seed, log=lambda s: None)
            per_seed.append(probs)

        def score(ph: np.ndarray, pv: np.ndarray) -> float:
            acc_h = float((ph.argmax(1) == hold.labels).mean())
            acc_v = float((pv.argmax(1) == valid.labels).mean())
            return 0.5 * (acc_h + acc_v)

        mean_curve = [
            float(np.mean([score(*per_seed[s][e]) for s in range(seeds)])) for e in range(epochs)
        ]
        ens_curve = [
            score(
                np.mean([per_seed[s][e][0] for s in range(seeds)], 0),
                np.mean([per_seed[s][e][1] for s in range(seeds)], 0),
            )
            for e in range(epochs)
        ]
        smooth = np.convolve(np.pad(mean_curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        best_epoch = int(np.argmax(smooth)) + 1
        results.append(
            {
                "trial": trial.number,
                "params": trial.params,
                "trial_value": trial.value,
                "mean_curve": mean_curve,
                "ensemble_curve": ens_curve,
                "best_epoch": best_epoch,
                "smoothed_best": float(smooth[best_epoch - 1]),
                "ensemble_at_best": ens_curve[best_epoch - 1],
            }
        )
        log(
            f"recheck trial {trial.number}: seed-mean {smooth[best_epoch - 1]:.4f} at epoch "
            f"{best_epoch}, ensemble of {seeds} {ens_curve[best_epoch - 1]:.4f}"
        )
    chosen = max(results, key=lambda r: r["smoothed_best"])
    return {"chosen": chosen, "members": seeds, "epochs_tried": epochs, "results": results}


def read_choice(path: Path) -> tuple[HeadParams, int, int]:
    """The chosen head settings, epoch count and ensemble size (``musicnn-tune --choice``)."""
    data = json.loads(path.read_text())
    chosen = data["chosen"]
    return HeadParams(**chosen["params"]), int(chosen["best_epoch"]), int(data["members"])
