"""Command-line options that several ``genrefy-train`` commands share, declared once.

Each is a decorator adding one option (or a group of them) to a click command.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import dataset
from .plan import SPLITS

F = TypeVar("F", bound=Callable[..., Any])

MODELS = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models"
#: The hybrid model's run folder and the shipped bundle ``ship`` writes by default.
DEFAULT_RUN = Path("runs/gtzan-hybrid")
SHIPPED_BUNDLE = MODELS / "hybrid"
#: The musicnn bundle folder, the shared clips beside the checkout, the taggram cache.
MUSICNN_BUNDLE = MODELS / "musicnn"
MUSICNN_GTZAN = Path(__file__).resolve().parents[2] / "shared" / "gtzan"
TAGGRAM_CACHE = Path(".cache") / "musicnn" / "port_taggrams.npz"

# --- the hybrid model -------------------------------------------------------------------------


def data_option(f: F) -> F:
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: str(dataset.default_data_dir()),
        show_default="$GENREFY_GTZAN or ../shared/gtzan",
        help="GTZAN root: original release, Kaggle copy or the shared folder.",
    )(f)


def run_options(f: F) -> F:
    """``--out``, ``--jobs``, ``--cache``: the run folder and the feature extraction."""
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


def fit_options(f: F) -> F:
    """Options of every command that trains networks (see :func:`fit_kwargs`)."""
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


def fit_kwargs(epochs: int, patience: int, windows_per_epoch: int) -> dict[str, int]:
    """The values of :func:`fit_options`, as the training functions take them."""
    return {"epochs": epochs, "patience": patience, "windows_per_epoch": windows_per_epoch}


def prepare_options(f: F) -> F:
    f = click.option(
        "--split",
        type=click.Choice(list(SPLITS)),
        default="auto",
        help="auto: fault-filtered when every listed clip is present, else kfold. "
        "fault-filtered+unlisted: also train on the clips in no list.",
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


def tune_options(f: F) -> F:
    f = click.option("--trials", default=30, show_default=True, help="Finished trials to reach.")(f)
    f = click.option("--timeout", type=float, default=None, help="Stop starting trials after N s.")(
        f
    )
    f = click.option("--tune-folds", default=2, show_default=True, help="CV folds per trial.")(f)
    f = click.option("--tune-epochs", default=20, show_default=True, help="Most epochs per fold.")(
        f
    )
    return f


hp_option = click.option(
    "--hp",
    "hp_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hyperparameters JSON (default: the run's best_hp.json, else the defaults).",
)
bundle_option = click.option(
    "--bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Bundle folder to write.",
)
version_option = click.option(
    "--model-version",
    "version",
    default=time.strftime("%Y.%m.%d"),
    show_default="today",
    help="model_version written into the bundle.",
)

# --- the musicnn model ------------------------------------------------------------------------


def gtzan_option(f: F) -> F:
    return click.option(
        "--gtzan",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("GENREFY_GTZAN", str(MUSICNN_GTZAN)),
        show_default="$GENREFY_GTZAN or ../shared/gtzan",
        help="Folder with manifest.csv, genres/ and musicnn_taggrams/.",
    )(f)


def musicnn_bundle_option(f: F) -> F:
    return click.option(
        "--bundle",
        type=click.Path(file_okay=False, path_type=Path),
        default=MUSICNN_BUNDLE,
        show_default=True,
        help="The musicnn bundle folder.",
    )(f)


def taggram_cache_option(f: F) -> F:
    return click.option(
        "--cache",
        type=click.Path(dir_okay=False, path_type=Path),
        default=TAGGRAM_CACHE,
        show_default=True,
        help="Cache of the port's taggrams of the shared clips.",
    )(f)
