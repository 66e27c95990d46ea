"""Click commands for the musicnn model: import, fidelity, tuning, head + bundle.

``COMMANDS`` is registered by ``model_training/cli.py``. Typical run::

    genrefy-train import-musicnn .cache/musicnn/musicnn-0.1.0-py3-none-any.whl
    genrefy-train musicnn-fidelity
    genrefy-train musicnn-tune --trials 30
    genrefy-train musicnn-head          # final head, ff-test once, bundle
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from .musicnn_retrain import musicnn_port_data_cmd, musicnn_retrain_cmd

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "musicnn"
DEFAULT_GTZAN = Path(__file__).resolve().parents[2] / "shared" / "gtzan"
DEFAULT_CACHE = Path(".cache") / "musicnn" / "port_taggrams.npz"
DEFAULT_STUDY = "sqlite:///runs/musicnn_head.db"
DEFAULT_CHOICE = Path("runs") / "musicnn_head_choice.json"
STUDY_NAME = "musicnn-head"
HOLDOUT_FRACTION, HOLDOUT_SEED = 0.2, 7


def _gtzan_option(f: Any) -> Any:
    return click.option(
        "--gtzan",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("GENREFY_GTZAN", str(DEFAULT_GTZAN)),
        show_default="$GENREFY_GTZAN or ../shared/gtzan",
        help="Folder with manifest.csv, genres/ and musicnn_taggrams/.",
    )(f)


def _bundle_option(f: Any) -> Any:
    return click.option(
        "--bundle",
        type=click.Path(file_okay=False, path_type=Path),
        default=BUNDLE_DIR,
        show_default=True,
        help="The musicnn bundle folder.",
    )(f)


def _cache_option(f: Any) -> Any:
    return click.option(
        "--cache",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CACHE,
        show_default=True,
        help="Cache of the port's taggrams of the shared clips.",
    )(f)


# --------------------------------------------------------------------------- shared data


def _published(gtzan: Path) -> dict[str, Any]:
    from .musicnn_fidelity import TAGGRAM_FILES, load_published

    return {k: load_published(gtzan / "musicnn_taggrams" / f) for k, f in TAGGRAM_FILES.items()}


def _port(gtzan: Path, cache: Path, bundle: Path) -> dict[str, Any]:
    """The port's taggrams of every shared clip (computed once, then cached)."""
    import keras

    from .musicnn_fidelity import port_taggrams

    model = keras.models.load_model(bundle / "frontend.keras", safe_mode=True, compile=False)

    def predict(p: np.ndarray) -> np.ndarray:
        if not len(p):
            return np.zeros((0, model.output_shape[-1]), np.float32)
        return np.asarray(model.predict(p, batch_size=32, verbose=0), dtype=np.float32)

    return port_taggrams(gtzan, cache, predict=predict, log=click.echo)


def _split_of(gtzan: Path) -> dict[str, str]:
    from .musicnn_fidelity import read_manifest

    return {r["track_id"]: r["fault_filtered_split"] for r in read_manifest(gtzan)}


def _validation_sets(gtzan: Path, cache: Path, bundle: Path) -> dict[str, Any]:
    """ff-train split into fit / hold-out, and the shared ff-valid clips through the port."""
    from .musicnn_head import stratified_holdout

    train = _published(gtzan)["ff_train"]
    hold = stratified_holdout(train.labels, HOLDOUT_FRACTION, HOLDOUT_SEED)
    port = _port(gtzan, cache, bundle)
    split = _split_of(gtzan)
    in_valid = np.array([split[t] == "valid" for t in port["windows"].tracks])
    return {
        "train_all": train,
        "fit": train.subset(~hold),
        "holdout": train.subset(hold),
        "valid_windows": port["windows"].subset(in_valid),
        "port": port,
        "split": split,
    }


# --------------------------------------------------------------------------- commands


@click.command("import-musicnn", short_help="Convert the MSD_musicnn weights to Keras.")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=BUNDLE_DIR)
def import_musicnn_cmd(source: Path, out: Path) -> None:
    """Convert MSD_musicnn from SOURCE (the musicnn 0.1.0 wheel or its unpacked folder)."""
    from .musicnn_import import import_musicnn

    report = import_musicnn(source, out)
    click.echo(
        f"{report['n_checkpoint_variables']} checkpoint variables: {report['n_mapped']} mapped "
        f"once each ({report['n_params']:,} parameters), {report['n_skipped_optimiser']} "
        f"optimiser slots skipped → {out}"
    )


@click.command("musicnn-export-frontend", short_help="Re-export the fast int8 front-end graph.")
@_bundle_option
def musicnn_export_frontend_cmd(bundle: Path) -> None:
    """Re-export frontend.tflite (the fast int8 graph) from frontend.keras, and mel_basis.npy."""
    import keras

    from genrefy_tagger.lite import LiteRunner

    from .musicnn_fast import export_fast_frontend
    from .musicnn_import import write_mel_basis

    port = keras.models.load_model(bundle / "frontend.keras", safe_mode=True, compile=False)
    info = export_fast_frontend(port, bundle / "frontend.tflite")
    write_mel_basis(bundle)
    rng = np.random.default_rng(0)
    patches = (rng.random((4, *port.input_shape[1:])) * 4).astype(np.float32)
    diff = np.abs(
        LiteRunner(bundle / "frontend.tflite")(patches) - port.predict(patches, verbose=0)
    )
    click.echo(
        f"{bundle / 'frontend.tflite'}: {len(info['int8_convolutions'])} int8 convolutions; "
        f"max |LiteRT - Keras| on 4 random patches {diff.max():.2e}"
    )


@click.command("musicnn-fidelity", short_help="Check the port against the published taggrams.")
@_gtzan_option
@_bundle_option
@_cache_option
def musicnn_fidelity_cmd(gtzan: Path, bundle: Path, cache: Path) -> None:
    """Compare the port's taggrams of the shared clips with the published arrays."""
    from .musicnn_fidelity import compare

    port = _port(gtzan, cache, bundle)
    report = compare(port["patches"], _published(gtzan))
    (bundle / "report").mkdir(parents=True, exist_ok=True)
    (bundle / "report" / "fidelity.json").write_text(json.dumps(report, indent=1) + "\n")
    click.echo(
        f"{report['n_clips']} clips, {report['n_patches']} patches: "
        f"MAE {report['mae_clip_mean']:.4f} (worst clip {report['mae_worst_clip']:.4f}), "
        f"corr {report['corr_patch_mean']:.4f}, top-tag agreement "
        f"{report['top_agreement_clip_mean']:.3f} per clip / "
        f"{report['top_agreement_patch_mean']:.3f} per patch "
        f"(worst clip {report['top_agreement_worst_clip']:.3f})"
    )


def _objective_factory(sets: dict[str, Any]) -> Any:
    """Optuna objective: mean of hold-out accuracy (10 spread patches) and ff-valid accuracy."""
    import optuna

    from .musicnn_head import HeadParams, keras_predict, track_probabilities, train_head

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


@click.command("musicnn-tune", short_help="Tune the musicnn head with Optuna.")
@_gtzan_option
@_bundle_option
@_cache_option
@click.option("--trials", default=30, show_default=True)
@click.option("--storage", default=DEFAULT_STUDY, show_default=True)
@click.option("--recheck-top", default=6, show_default=True, help="settings re-trained")
@click.option("--seeds", default=3, show_default=True, help="seeds per re-trained setting")
@click.option("--recheck-epochs", default=20, show_default=True)
@click.option("--choice", type=click.Path(path_type=Path), default=DEFAULT_CHOICE)
def musicnn_tune_cmd(
    gtzan: Path,
    bundle: Path,
    cache: Path,
    trials: int,
    storage: str,
    recheck_top: int,
    seeds: int,
    recheck_epochs: int,
    choice: Path,
) -> None:
    """Optuna (TPE + median pruner) over the head's settings, then a multi-seed re-check.

    Never reads ff-test. Writes the chosen setting, epoch count and ensemble size to
    ``--choice`` (read by ``musicnn-head``).
    """
    import optuna

    Path("runs").mkdir(exist_ok=True)
    sets = _validation_sets(gtzan, cache, bundle)
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
        click.echo(
            f"trial {trial.number} {trial.state.name} value={trial.value} "
            f"params={trial.params} attrs={trial.user_attrs} "
            f"({time.time() - start:.0f} s)"
        )

    if trials:
        study.optimize(_objective_factory(sets), n_trials=trials, callbacks=[tick])
    click.echo(f"best: {study.best_value:.4f} {study.best_params} {study.best_trial.user_attrs}")
    if recheck_top:
        result = recheck(study, sets, top=recheck_top, seeds=seeds, epochs=recheck_epochs)
        choice.parent.mkdir(parents=True, exist_ok=True)
        choice.write_text(json.dumps(result, indent=1) + "\n")
        c = result["chosen"]
        click.echo(
            f"chosen: trial {c['trial']}, {c['best_epoch']} epochs, {seeds} members → {choice}"
        )


def recheck(
    study: Any, sets: dict[str, Any], *, top: int, seeds: int, epochs: int
) -> dict[str, Any]:
    """Re-train the ``top`` trials' settings with ``seeds`` seeds for ``epochs`` epochs each.

    A trial's value is the best of up to 40 noisy epoch scores on 89 + 81 tracks, so
    the ranking is mostly noise. Here every setting gets the same epochs and several
    seeds; we keep the per-epoch validation score of each seed and of the seeds'
    averaged probabilities (an ensemble), and pick the setting, epoch count and
    ensemble size by the seed-averaged curve (3-epoch moving average).
    """
    from dataclasses import replace

    from .musicnn_head import HeadParams, keras_predict, track_probabilities, train_head

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
        click.echo(
            f"recheck trial {trial.number}: seed-mean {smooth[best_epoch - 1]:.4f} at epoch "
            f"{best_epoch}, ensemble of {seeds} {ens_curve[best_epoch - 1]:.4f}"
        )
    chosen = max(results, key=lambda r: r["smoothed_best"])
    return {"chosen": chosen, "members": seeds, "epochs_tried": epochs, "results": results}


def _choice(path: Path) -> tuple[Any, int, int]:
    from .musicnn_head import HeadParams

    data = json.loads(path.read_text())
    chosen = data["chosen"]
    return HeadParams(**chosen["params"]), int(chosen["best_epoch"]), int(data["members"])


def choose_min_confidence(labels: np.ndarray, probs: np.ndarray, target: float = 0.9) -> dict:
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


@click.command("musicnn-head", short_help="Train the musicnn head, test it once, write the bundle.")
@_gtzan_option
@_bundle_option
@_cache_option
@click.option("--choice", type=click.Path(exists=True, path_type=Path), default=DEFAULT_CHOICE)
@click.option("--seed", default=0, show_default=True, help="Random seed of the training.")
def musicnn_head_cmd(gtzan: Path, bundle: Path, cache: Path, choice: Path, seed: int) -> None:
    """Refit the chosen head on all of ff-train, evaluate on ff-test ONCE, write the bundle."""
    from .musicnn_bundle import write_musicnn_bundle

    params, epochs, members = _choice(choice)
    click.echo(f"head {params} for {epochs} epochs, {members} members")
    sets = _validation_sets(gtzan, cache, bundle)
    write_musicnn_bundle(
        bundle,
        params=params,
        epochs=epochs,
        members=members,
        sets=sets,
        test=_published(gtzan)["ff_test"],
        gtzan=gtzan,
        seed=seed,
        log=click.echo,
    )


COMMANDS = [
    import_musicnn_cmd,
    musicnn_export_frontend_cmd,
    musicnn_fidelity_cmd,
    musicnn_tune_cmd,
    musicnn_head_cmd,
    musicnn_port_data_cmd,
    musicnn_retrain_cmd,
]

__all__ = ["COMMANDS"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The musicnn commands on their own (normally registered in ``genrefy-train``)."""


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
