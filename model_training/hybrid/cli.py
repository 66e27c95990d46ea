"""``genrefy-train``'s commands for the hybrid model: one per step, and ``ship`` for all.

Each command logs its own command line into the run folder and calls one step of
:mod:`model_training.hybrid.steps`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import options as opt
from . import steps


def _log_command(out: Path) -> None:
    steps.log_command(out, sys.argv[1:])


@click.command("prepare", short_help="Find the clips, plan the splits, cache the features.")
@opt.data_option
@opt.run_options
@opt.prepare_options
def prepare_cmd(data, out, jobs, cache, split, folds, augment, seed, splits) -> None:
    """Find the clips, plan the splits and cache every window's features."""
    _log_command(out)
    steps.prepare(data, out, split, folds, augment, seed, splits, jobs=jobs, cache_dir=cache)


@click.command("tune", short_help="Search hyperparameters with Optuna (resumable).")
@opt.run_options
@opt.tune_options
def tune_cmd(out, jobs, cache, trials, timeout, tune_folds, tune_epochs) -> None:
    """Search hyperparameters with Optuna (resumes an interrupted study)."""
    _log_command(out)
    steps.tune(out, trials, timeout, tune_folds, tune_epochs, jobs=jobs, cache_dir=cache)


def _numbers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected numbers separated by commas, got {text!r}") from exc


@click.command("tune-reseed", short_help="Re-run the best trials with fresh seeds.")
@opt.run_options
@click.option("--trials", "trial_list", required=True, help="Trial numbers, e.g. 1,5,14,32.")
@click.option("--seeds", default="1,2,3", show_default=True, help="Seeds, e.g. 1,2,3.")
@click.option("--tune-folds", default=2, show_default=True, help="CV folds per run (as tune).")
@click.option("--tune-epochs", default=20, show_default=True, help="Most epochs (as tune).")
def reseed_cmd(out, jobs, cache, trial_list, seeds, tune_folds, tune_epochs) -> None:
    """Score some trials' settings again with fresh seeds; the best mean becomes best_hp.json.

    A trial's value is one seed's: on a small validation set the seed alone can move
    it as much as the whole study's spread.
    """
    _log_command(out)
    steps.reseed(
        out,
        _numbers(trial_list),
        _numbers(seeds),
        tune_folds,
        tune_epochs,
        jobs=jobs,
        cache_dir=cache,
    )


@click.command("train", short_help="Train the final model on the training clips.")
@opt.run_options
@opt.hp_option
@opt.fit_options
def train_cmd(out, jobs, cache, hp_file, epochs, patience, windows_per_epoch) -> None:
    """Train the final model on the training clips (early stopping on the valid clips)."""
    _log_command(out)
    fit = opt.fit_kwargs(epochs, patience, windows_per_epoch)
    steps.train(out, hp_file, fit, jobs=jobs, cache_dir=cache)


@click.command("evaluate", short_help="Cross-validate, and score the test clips once.")
@opt.run_options
@opt.hp_option
@opt.fit_options
@click.option("--cv/--no-cv", default=True, help="Cross-validate on the development clips.")
@click.option("--leaky/--no-leaky", default=True, help="Also measure a random chunk split.")
@click.option("--test/--no-test", default=True, help="Score the final model on the test clips.")
def evaluate_cmd(
    out, jobs, cache, hp_file, epochs, patience, windows_per_epoch, cv, leaky, test
) -> None:
    """Cross-validation, the leaky comparison and the one held-out test evaluation."""
    _log_command(out)
    fit = opt.fit_kwargs(epochs, patience, windows_per_epoch)
    steps.evaluate(out, hp_file, cv, leaky, test, fit, jobs=jobs, cache_dir=cache)


@click.command("export", short_help="Write the bundle: .keras, .tflite, bundle.json.")
@opt.run_options
@opt.bundle_option
@opt.version_option
@click.option(
    "--example",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An audio file the Analyzer must classify (default: a validation clip).",
)
def export_cmd(out, jobs, cache, bundle, version, example) -> None:
    """Write model.keras, model.tflite, bundle.json and report/ (default <out>/bundle)."""
    _log_command(out)
    steps.export(out, bundle or out / "bundle", version, example)


@click.command("ship", short_help="Every step, end to end, into one bundle.")
@opt.data_option
@opt.run_options
@opt.bundle_option
@opt.version_option
@opt.prepare_options
@opt.tune_options
@opt.fit_options
@opt.hp_option
def ship_cmd(
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
    fit = opt.fit_kwargs(epochs, patience, windows_per_epoch)
    steps.prepare(data, out, split, folds, augment, seed, splits, **kw)
    if trials > 0:
        steps.tune(out, trials, timeout, tune_folds, tune_epochs, **kw)
    steps.evaluate(out, hp_file, True, True, False, fit, **kw)
    steps.train(out, hp_file, fit, **kw)
    steps.evaluate(out, hp_file, False, False, True, fit, **kw)
    steps.export(out, bundle or opt.SHIPPED_BUNDLE, version, None)


COMMANDS = [prepare_cmd, tune_cmd, reseed_cmd, train_cmd, evaluate_cmd, export_cmd, ship_cmd]
