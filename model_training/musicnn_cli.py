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

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "musicnn"
DEFAULT_GTZAN = Path(__file__).resolve().parents[2] / "shared" / "gtzan"
DEFAULT_CACHE = Path(".cache") / "musicnn" / "port_taggrams.npz"
DEFAULT_STUDY = "sqlite:///runs/musicnn_head.db"
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


@click.command("import-musicnn")
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


@click.command("musicnn-fidelity")
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


@click.command("musicnn-tune")
@_gtzan_option
@_bundle_option
@_cache_option
@click.option("--trials", default=30, show_default=True)
@click.option("--storage", default=DEFAULT_STUDY, show_default=True)
def musicnn_tune_cmd(gtzan: Path, bundle: Path, cache: Path, trials: int, storage: str) -> None:
    """Optuna (TPE + median pruner) over the head's hyper-parameters; never reads ff-test."""
    import optuna

    Path("runs").mkdir(exist_ok=True)
    sets = _validation_sets(gtzan, cache, bundle)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=10),
    )
    start = time.time()

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        click.echo(
            f"trial {trial.number} {trial.state.name} value={trial.value} "
            f"params={trial.params} attrs={trial.user_attrs} "
            f"({time.time() - start:.0f} s)"
        )

    study.optimize(_objective_factory(sets), n_trials=trials, callbacks=[tick])
    click.echo(f"best: {study.best_value:.4f} {study.best_params} {study.best_trial.user_attrs}")


def _best_params(storage: str) -> tuple[Any, int]:
    import optuna

    from .musicnn_head import HeadParams

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    best = study.best_trial
    return HeadParams(**best.params), int(best.user_attrs["best_epoch"])


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


@click.command("musicnn-head")
@_gtzan_option
@_bundle_option
@_cache_option
@click.option("--storage", default=DEFAULT_STUDY, show_default=True)
@click.option("--seed", default=0, show_default=True)
def musicnn_head_cmd(gtzan: Path, bundle: Path, cache: Path, storage: str, seed: int) -> None:
    """Refit the best head on all of ff-train, evaluate on ff-test ONCE, write the bundle."""
    from .musicnn_bundle import write_musicnn_bundle

    params, epochs = _best_params(storage)
    click.echo(f"head {params} for {epochs} epochs")
    sets = _validation_sets(gtzan, cache, bundle)
    write_musicnn_bundle(
        bundle,
        params=params,
        epochs=epochs,
        sets=sets,
        test=_published(gtzan)["ff_test"],
        gtzan=gtzan,
        seed=seed,
        log=click.echo,
    )


COMMANDS = [import_musicnn_cmd, musicnn_fidelity_cmd, musicnn_tune_cmd, musicnn_head_cmd]

__all__ = ["COMMANDS"]


@click.group()
def main() -> None:
    """The musicnn commands on their own (normally registered in ``genrefy-train``)."""


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
