"""``genrefy-train``: prepare → tune → train → evaluate → export, or ``ship`` for all.

Every step reads and writes plain files in one run folder (``runs/gtzan-hybrid``
unless ``--out``), so steps can be rerun one at a time::

    plan.json        which clips play which role (and what was skipped)
    tune/study.db    the Optuna study (resumable); tune.json, best_hp.json
    final/           model.keras, scaler.npz, history.json  (the final model)
    cv.json          cross-validation, vote rule, threshold; leaky.json; test.json
    report/          figures and metrics copied into the bundle

The commands only parse options and call the step modules.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import dataset

DEFAULT_RUN = Path("runs/gtzan-hybrid")
SHIPPED_BUNDLE = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "hybrid"


def _data_option(f):
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: str(dataset.default_data_dir()),
        show_default="$GENREFY_GTZAN or ../shared/gtzan",
        help="GTZAN root: original release, Kaggle copy or the shared folder.",
    )(f)


def _run_options(f):
    f = click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_RUN,
        show_default=True,
        help="Run folder for every intermediate file.",
    )(f)
    f = click.option("--jobs", default=2, show_default=True, help="Processes for extraction.")(f)
    f = click.option(
        "--cache",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(".cache/features"),
        show_default=True,
        help="Where window features are cached (shared by every run).",
    )(f)
    return f


def _say(text: str) -> None:
    click.echo(text, err=True)


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def _read(path: Path) -> Any:
    if not path.is_file():
        raise click.ClickException(f"{path} not found: run the earlier step first")
    return json.loads(path.read_text(encoding="utf-8"))


def _command_line() -> str:
    return "genrefy-train " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log_command(out: Path) -> None:
    """Append the exact command to ``<run>/commands.json`` (it goes into the bundle)."""
    path = out / "commands.json"
    done = json.loads(path.read_text()) if path.is_file() else []
    _write(path, [*done, _command_line()])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train genrefy's genre models on GTZAN and export them as bundles for genrefy-tag.

    \b
    The hybrid model, one step at a time (each reads and writes files in --out):
      prepare → tune → evaluate → train → export     or all of them: ship
    The musicnn model (pretrained MSD_musicnn front-end + a trained head):
      import-musicnn → musicnn-fidelity → musicnn-tune → musicnn-head

    Run 'genrefy-train COMMAND -h' for a command's options.
    """


# --- steps ------------------------------------------------------------------------------------


def _prepare(
    data: Path, out: Path, split: str, folds: int, augment: int, seed: int, splits: str | None, **kw
):
    from .train import load_windows

    disc = dataset.discover(data, splits_dir=splits)
    mode = dataset.choose_split(disc, split)
    plan = dataset.make_plan(disc.clips, mode, k=folds, seed=seed)
    _say(disc.summary())
    if disc.missing_listed:
        _say(f"{len(disc.missing_listed)} clips of the fault-filtered lists are not here")
    start = time.perf_counter()
    _, features = load_windows(disc.clips, plan.development(), n_augmented=augment, **kw)
    seconds = time.perf_counter() - start
    for (tid, variant), why in sorted(features.failures.items()):
        _say(f"skipped {tid} ({variant}): {why}")
    failed = {tid for tid, _ in features.failures}
    by_role = {
        role: dataset.genre_counts(c for c in disc.clips if c.track_id in set(ids) - failed)
        for role, ids in (("train", plan.train), ("valid", plan.valid), ("test", plan.test))
    }
    info = {
        "data": str(data),
        "layout": disc.layout,
        "fault_filtered_lists": disc.ff_source,
        "clips": len(disc.clips),
        "per_genre": disc.counts(),
        "per_role": by_role,
        "skipped": [{"clip": c, "reason": r} for c, r in disc.skipped]
        + [{"clip": f"{t} ({v})", "reason": r} for (t, v), r in features.failures.items()],
        "augmented_copies": augment,
        "extraction_seconds": round(seconds, 1),
        "extracted_now": features.computed,
        "plan": plan.to_dict(),
    }
    _write(out / "plan.json", info)
    _say(f"split {mode}: train {len(plan.train)}, valid {len(plan.valid)}, test {len(plan.test)}")
    _say(f"features ready in {seconds:.1f} s ({features.computed} extracted now)")
    return info


def _windows(out: Path, *, with_test: bool = False, **kw):
    """The plan and the windows of the development clips (and, when asked, the test clips)."""
    from .train import load_windows

    info = _read(out / "plan.json")
    plan = dataset.Plan.from_dict(info["plan"])
    disc = dataset.discover(info["data"], check_audio=False)
    wanted = set(plan.development()) | (set(plan.test) if with_test else set())
    clips = [c for c in disc.clips if c.track_id in wanted]
    windows, _ = load_windows(clips, plan.development(), n_augmented=info["augmented_copies"], **kw)
    return info, plan, windows


def _hp(out: Path, hp_file: Path | None) -> dict[str, Any]:
    from .network import DEFAULT_HP

    if hp_file is not None:
        chosen = _read(hp_file)
        # A bundle.json works too: retrain a shipped model with its own hyperparameters.
        chosen = chosen.get("hyperparameters", chosen)
    else:
        best = out / "best_hp.json"
        chosen = _read(best) if best.is_file() else {}
    unknown = sorted(set(chosen) - set(DEFAULT_HP))
    if unknown:
        raise click.ClickException(f"unknown hyperparameters: {unknown}")
    return {**DEFAULT_HP, **chosen}


def _tune(
    out: Path, trials: int, timeout: float | None, tune_folds: int, tune_epochs: int, **kw
) -> dict:
    from .tune import tune

    info, plan, windows = _windows(out, **kw)
    summary = tune(
        windows,
        plan.folds[:tune_folds],
        study_dir=out / "tune",
        trials=trials,
        timeout=timeout,
        epochs=tune_epochs,
        seed=plan.seed,
    )
    _write(out / "tune.json", summary)
    if "best_hp" in summary:
        _write(out / "best_hp.json", summary["best_hp"])
        _say(f"best macro-F1 {summary['best_value']:.3f} (trial {summary['best_trial']})")
    _say(f"{summary['complete']} complete, {summary['pruned']} pruned trials")
    return summary


def _train(out: Path, hp_file: Path | None, fit: dict[str, int], **kw) -> dict:
    import numpy as np

    from .train import fit_clips

    info, plan, windows = _windows(out, **kw)
    hp = _hp(out, hp_file)
    fitted = fit_clips(hp, windows, plan.train, plan.valid, seed=plan.seed, **fit)
    final = out / "final"
    final.mkdir(parents=True, exist_ok=True)
    fitted.result.model.save(final / "model.keras")
    np.savez(final / "scaler.npz", mean=fitted.mean, scale=fitted.scale)
    summary = {
        "hyperparameters": hp,
        "train_clips": len(plan.train),
        "valid_clips": len(plan.valid),
        "best_epoch": fitted.result.best_epoch,
        "epochs_run": len(fitted.result.history["loss"]),
        "train_seconds": round(fitted.result.seconds, 1),
        "history": fitted.result.history,
    }
    _write(final / "history.json", summary)
    _say(f"final model: best epoch {summary['best_epoch']}, {summary['train_seconds']:.0f} s")
    return summary


def _evaluate(
    out: Path,
    hp_file: Path | None,
    cv: bool,
    leaky: bool,
    test: bool,
    fit: dict[str, int],
    **kw,
) -> None:
    from . import evaluate as ev

    info, plan, windows = _windows(out, with_test=test, **kw)
    hp = _hp(out, hp_file)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    if cv:
        result = ev.cross_validate(hp, windows, plan.folds, seed=plan.seed, **fit)
        histories = result.pop("histories")
        _write(out / "cv.json", result)
        ev.plot_confusion(
            result["confusion_all_folds"],
            report / "confusion_cv.png",
            title=f"cross-validation, all folds ({result['vote']} vote)",
        )
        ev.plot_curves(histories, report / "curves_cv.png")
        acc, f1 = result["summary"]["track_accuracy"], result["summary"]["track_macro_f1"]
        _say(
            f"CV track accuracy {acc['mean']:.3f} ± {acc['std']:.3f}, "
            f"macro-F1 {f1['mean']:.3f} ± {f1['std']:.3f} ({result['vote']} vote)"
        )
    if leaky:
        result = ev.leaky_chunk_accuracy(hp, windows, plan.development(), seed=plan.seed, **fit)
        _write(out / "leaky.json", result)
        _say(
            f"chunk accuracy with a random chunk split: {result['chunk_accuracy']:.3f} "
            f"({ev.LEAKY_LABEL})"
        )
    if test:
        import keras
        import numpy as np

        from .train import configure_tensorflow

        configure_tensorflow()
        model = keras.models.load_model(out / "final" / "model.keras", safe_mode=True)
        scaler = np.load(out / "final" / "scaler.npz", allow_pickle=False)
        vote = _read(out / "cv.json")["vote"] if (out / "cv.json").is_file() else "mean"
        result = ev.evaluate_model(
            model, scaler["mean"], scaler["scale"], windows.subset(plan.test), vote=vote
        )
        _write(out / "test.json", result)
        track = result["track"][vote]
        ev.plot_confusion(
            track["confusion"],
            report / "confusion_test.png",
            title=f"held-out test, {track['n']} tracks ({vote} vote)",
        )
        history = _read(out / "final" / "history.json")["history"]
        ev.plot_curves({"final": history}, report / "curves.png")
        _say(f"held-out test ({track['n']} tracks):\n" + ev.per_genre_table(track))


def _export(out: Path, bundle: Path, version: str, example: Path | None, **kw) -> dict:
    from .export import bundle_meta, export_from_run

    meta = bundle_meta(out, version=version)
    check = export_from_run(out, bundle, meta, example=example)
    _say(f"bundle written to {bundle}: {json.dumps(check)}")
    return check


# --- commands ---------------------------------------------------------------------------------


def _fit_options(f):
    """Options of every command that trains networks."""
    f = click.option("--epochs", default=60, show_default=True, help="Most epochs per training.")(f)
    f = click.option(
        "--patience",
        default=10,
        show_default=True,
        help="Early stopping: epochs without a better validation loss.",
    )(f)
    f = click.option(
        "--windows-per-epoch",
        default=2048,
        show_default=True,
        help="Genre-balanced windows drawn per epoch.",
    )(f)
    return f


def _fit(epochs: int, patience: int, windows_per_epoch: int) -> dict[str, int]:
    return {"epochs": epochs, "patience": patience, "windows_per_epoch": windows_per_epoch}


def _prepare_options(f):
    f = click.option(
        "--split",
        type=click.Choice(["auto", "fault-filtered", "kfold"]),
        default="auto",
        help="auto: fault-filtered when every listed clip is present, else kfold.",
    )(f)
    f = click.option("--folds", default=5, show_default=True, help="k of the k-fold CV.")(f)
    f = click.option(
        "--augment", default=2, show_default=True, help="Augmented copies per training clip."
    )(f)
    f = click.option(
        "--seed", default=0, show_default=True, help="Random seed of the split and training."
    )(f)
    f = click.option(
        "--splits",
        default=None,
        help="Folder with {train,valid,test}_filtered.txt ('none': ignore every list; default: "
        "<data>/splits, then the copy in model_training/splits).",
    )(f)
    return f


def _tune_options(f):
    f = click.option("--trials", default=30, show_default=True, help="Finished trials to reach.")(f)
    f = click.option("--timeout", type=float, default=None, help="Stop starting trials after N s.")(
        f
    )
    f = click.option("--tune-folds", default=2, show_default=True, help="CV folds per trial.")(f)
    f = click.option("--tune-epochs", default=20, show_default=True, help="Most epochs per fold.")(
        f
    )
    return f


_HP_OPTION = click.option(
    "--hp",
    "hp_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hyperparameters JSON (default: the run's best_hp.json, else the defaults).",
)
_BUNDLE = click.option(
    "--bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Bundle folder to write.",
)
_VERSION = click.option(
    "--model-version",
    "version",
    default=time.strftime("%Y.%m.%d"),
    show_default="today",
    help="model_version written into the bundle.",
)


@main.command(short_help="Find the clips, plan the splits, cache the features.")
@_data_option
@_run_options
@_prepare_options
def prepare(data, out, jobs, cache, split, folds, augment, seed, splits) -> None:
    """Find the clips, plan the splits and cache every window's features."""
    _log_command(out)
    _prepare(data, out, split, folds, augment, seed, splits, jobs=jobs, cache_dir=cache)


@main.command(name="tune", short_help="Search hyperparameters with Optuna (resumable).")
@_run_options
@_tune_options
def tune_cmd(out, jobs, cache, trials, timeout, tune_folds, tune_epochs) -> None:
    """Search hyperparameters with Optuna (resumes an interrupted study)."""
    _log_command(out)
    _tune(out, trials, timeout, tune_folds, tune_epochs, jobs=jobs, cache_dir=cache)


@main.command(name="train", short_help="Train the final model on the training clips.")
@_run_options
@_HP_OPTION
@_fit_options
def train_cmd(out, jobs, cache, hp_file, epochs, patience, windows_per_epoch) -> None:
    """Train the final model on the training clips (early stopping on the valid clips)."""
    _log_command(out)
    _train(out, hp_file, _fit(epochs, patience, windows_per_epoch), jobs=jobs, cache_dir=cache)


@main.command(name="evaluate", short_help="Cross-validate, and score the test clips once.")
@_run_options
@_HP_OPTION
@_fit_options
@click.option("--cv/--no-cv", default=True, help="Cross-validate on the development clips.")
@click.option("--leaky/--no-leaky", default=True, help="Also measure a random chunk split.")
@click.option("--test/--no-test", default=True, help="Score the final model on the test clips.")
def evaluate_cmd(
    out, jobs, cache, hp_file, epochs, patience, windows_per_epoch, cv, leaky, test
) -> None:
    """Cross-validation, the leaky comparison and the one held-out test evaluation."""
    _log_command(out)
    fit = _fit(epochs, patience, windows_per_epoch)
    _evaluate(out, hp_file, cv, leaky, test, fit, jobs=jobs, cache_dir=cache)


@main.command(name="export", short_help="Write the bundle: .keras, .tflite, bundle.json.")
@_run_options
@_BUNDLE
@_VERSION
@click.option(
    "--example",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An audio file the Analyzer must classify (default: a validation clip).",
)
def export_cmd(out, jobs, cache, bundle, version, example) -> None:
    """Write model.keras, model.tflite, bundle.json and report/ (default <out>/bundle)."""
    _log_command(out)
    _export(out, bundle or out / "bundle", version, example)


@main.command(short_help="Every step, end to end, into one bundle.")
@_data_option
@_run_options
@_BUNDLE
@_VERSION
@_prepare_options
@_tune_options
@_fit_options
@_HP_OPTION
def ship(
    data,
    out,
    jobs,
    cache,
    bundle,
    version,
    hp_file,
    split,
    folds,
    augment,
    seed,
    splits,
    trials,
    timeout,
    tune_folds,
    tune_epochs,
    epochs,
    patience,
    windows_per_epoch,
) -> None:
    """Every step, end to end: prepare, tune, evaluate, train, export.

    The bundle goes to --bundle (default: the shipped hybrid model's folder).
    --hp fixes the hyperparameters (a JSON of them, or a bundle.json) instead
    of the study's best; with --trials 0 nothing is tuned.
    """
    _log_command(out)
    kw = {"jobs": jobs, "cache_dir": cache}
    fit = _fit(epochs, patience, windows_per_epoch)
    _prepare(data, out, split, folds, augment, seed, splits, **kw)
    if trials > 0:
        _tune(out, trials, timeout, tune_folds, tune_epochs, **kw)
    _evaluate(out, hp_file, True, True, False, fit, **kw)
    _train(out, hp_file, fit, **kw)
    _evaluate(out, hp_file, False, False, True, fit, **kw)
    _export(out, bundle or SHIPPED_BUNDLE, version, None)


# --- extra commands ---------------------------------------------------------------------------
# Other training front ends live in their own modules and expose ``COMMANDS`` (a list of
# click commands); list the module here and its commands join ``genrefy-train``.
EXTENSIONS = ("model_training.musicnn_cli",)


def _add_extensions() -> None:
    import importlib

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but is broken: say so
            continue
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_add_extensions()

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
