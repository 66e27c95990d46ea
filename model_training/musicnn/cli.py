"""``genrefy-train``'s commands for the musicnn model: import, fidelity, tuning, head, retrain.

``COMMANDS`` is registered by ``model_training/cli.py``. Typical run::

    genrefy-train import-musicnn .cache/musicnn/musicnn-0.1.0-py3-none-any.whl
    genrefy-train musicnn-fidelity
    genrefy-train musicnn-tune --trials 30
    genrefy-train musicnn-head          # final head, ff-test once, bundle

The work is done in the sibling modules, imported inside the commands so that
``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import options as opt

DEFAULT_STUDY = "sqlite:///runs/musicnn_head.db"
DEFAULT_CHOICE = Path("runs") / "musicnn_head_choice.json"


def _names(text: str) -> tuple[str, ...]:
    """``"a,b,"`` → ``("a", "b")``."""
    return tuple(v for v in text.split(",") if v)


@click.command("import-musicnn", short_help="Convert the MSD_musicnn weights to Keras.")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=opt.MUSICNN_BUNDLE)
def import_musicnn_cmd(source: Path, out: Path) -> None:
    """Convert MSD_musicnn from SOURCE (the musicnn 0.1.0 wheel or its unpacked folder)."""
    from .convert import import_musicnn

    report = import_musicnn(source, out)
    click.echo(
        f"{report['n_checkpoint_variables']} checkpoint variables: {report['n_mapped']} mapped "
        f"once each ({report['n_params']:,} parameters), {report['n_skipped_optimiser']} "
        f"optimiser slots skipped → {out}"
    )


@click.command("musicnn-export-frontend", short_help="Re-export the fast int8 front-end graph.")
@opt.musicnn_bundle_option
def musicnn_export_frontend_cmd(bundle: Path) -> None:
    """Re-export frontend.tflite (the fast int8 graph) from frontend.keras, and mel_basis.npy."""
    from .convert import FRONTEND_TFLITE, reexport_frontend

    info, diff = reexport_frontend(bundle)
    click.echo(
        f"{bundle / FRONTEND_TFLITE}: {len(info['int8_convolutions'])} int8 convolutions; "
        f"max |LiteRT - Keras| on 4 random patches {diff:.2e}"
    )


@click.command("musicnn-fidelity", short_help="Check the port against the published taggrams.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@opt.taggram_cache_option
def musicnn_fidelity_cmd(gtzan: Path, bundle: Path, cache: Path) -> None:
    """Compare the port's taggrams of the shared clips with the published arrays."""
    from . import sets
    from .fidelity import compare

    port = sets.port(gtzan, cache, bundle, log=click.echo)
    report = compare(port["patches"], sets.published(gtzan))
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


@click.command("musicnn-tune", short_help="Tune the musicnn head with Optuna.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@opt.taggram_cache_option
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
    from .sets import validation_sets
    from .tune import recheck, run_study

    Path("runs").mkdir(exist_ok=True)
    sets = validation_sets(gtzan, cache, bundle, log=click.echo)
    study = run_study(sets, trials=trials, storage=storage, log=click.echo)
    click.echo(f"best: {study.best_value:.4f} {study.best_params} {study.best_trial.user_attrs}")
    if recheck_top:
        result = recheck(
            study, sets, top=recheck_top, seeds=seeds, epochs=recheck_epochs, log=click.echo
        )
        choice.parent.mkdir(parents=True, exist_ok=True)
        choice.write_text(json.dumps(result, indent=1) + "\n")
        c = result["chosen"]
        click.echo(
            f"chosen: trial {c['trial']}, {c['best_epoch']} epochs, {seeds} members → {choice}"
        )


@click.command("musicnn-head", short_help="Train the musicnn head, test it once, write the bundle.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@opt.taggram_cache_option
@click.option("--choice", type=click.Path(exists=True, path_type=Path), default=DEFAULT_CHOICE)
@click.option("--seed", default=0, show_default=True, help="Random seed of the training.")
def musicnn_head_cmd(gtzan: Path, bundle: Path, cache: Path, choice: Path, seed: int) -> None:
    """Refit the chosen head on all of ff-train, evaluate on ff-test ONCE, write the bundle."""
    from .bundle import write_musicnn_bundle
    from .sets import published, validation_sets
    from .tune import read_choice

    params, epochs, members = read_choice(choice)
    click.echo(f"head {params} for {epochs} epochs, {members} members")
    sets = validation_sets(gtzan, cache, bundle, log=click.echo)
    write_musicnn_bundle(
        bundle,
        params=params,
        epochs=epochs,
        members=members,
        sets=sets,
        test=published(gtzan)["ff_test"],
        gtzan=gtzan,
        seed=seed,
        log=click.echo,
    )


@click.command("musicnn-port-data", short_help="Cache the port's taggrams of the non-test clips.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@click.option("--variants", default="windows,norm,aug0", show_default=True)
@click.option(
    "--aug-every",
    default=2,
    show_default=True,
    help="production-style copies of every N-th training clip",
)
@click.option(
    "--raw-every",
    default=4,
    show_default=True,
    help="unnormalised patches of every N-th ff-train clip (the fidelity re-check)",
)
@click.option("--threads", default=2, show_default=True)
def musicnn_port_data_cmd(
    gtzan: Path, bundle: Path, variants: str, aug_every: int, raw_every: int, threads: int
) -> None:
    """Cache the port's taggrams of the shared non-test clips (model_training.musicnn.data)."""
    from .data import build_port_data

    build_port_data(gtzan, bundle, _names(variants), aug_every=aug_every, raw_every=raw_every,
                    threads=threads, log=click.echo)  # fmt: skip


@click.command("musicnn-retrain", short_help="Retrain the head on published and port taggrams.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@click.option(
    "--variants",
    default="norm,aug0",
    show_default=True,
    help="port taggram variants to add (model_training.musicnn.data)",
)
@click.option("--members", default=3, show_default=True)
@click.option("--max-epochs", default=12, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--with-allmusic",
    is_flag=True,
    help="also train on ../shared/allmusic's in-genre and Pop/Rock previews (artist-grouped "
    "fold heads give their figures; run musicnn-outside next)",
)
@click.option("--jobs", default=2, show_default=True)
def musicnn_retrain_cmd(
    gtzan: Path,
    bundle: Path,
    variants: str,
    members: int,
    max_epochs: int,
    seed: int,
    with_allmusic: bool,
    jobs: int,
) -> None:
    """Retrain the head on published + port taggrams; calibrate and threshold on ff-valid."""
    if with_allmusic:
        from .allmusic_head import retrain_with_allmusic

        retrain_with_allmusic(
            bundle,
            gtzan,
            variants=_names(variants),
            members=members,
            max_epochs=max_epochs,
            seed=seed,
            jobs=jobs,
            log=click.echo,
        )
        return
    from .retrain import retrain_bundle

    retrain_bundle(bundle, gtzan, variants=_names(variants), members=members,
                   max_epochs=max_epochs, seed=seed, log=click.echo)  # fmt: skip


@click.command("musicnn-outside", short_help="Fit the abstain-outside-the-genres rule.")
@opt.gtzan_option
@opt.musicnn_bundle_option
@click.option("--jobs", default=2, show_default=True)
def musicnn_outside_cmd(gtzan: Path, bundle: Path, jobs: int) -> None:
    """Fit the outside rule on GTZAN ff-valid + ../shared/allmusic and choose both thresholds."""
    from .outside import fit_outside

    fit_outside(bundle, gtzan, jobs=jobs, log=click.echo)


COMMANDS = [
    import_musicnn_cmd,
    musicnn_export_frontend_cmd,
    musicnn_fidelity_cmd,
    musicnn_tune_cmd,
    musicnn_head_cmd,
    musicnn_port_data_cmd,
    musicnn_retrain_cmd,
    musicnn_outside_cmd,
]
