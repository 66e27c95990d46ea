"""The hybrid model's steps: prepare → tune → evaluate → train → export (``ship``: all).

Every step reads and writes plain files in one run folder (``runs/gtzan-hybrid``
unless ``--out``), so steps can be rerun one at a time::

    plan.json        which clips play which role (and what was skipped or left out)
    tune/study.db    the Optuna study (resumable); tune.json, best_hp.json
    final/           model.keras, scaler.npz, history.json  (the final model)
    cv.json          cross-validation, vote rule, threshold; leaky.json; test.json
    report/          figures and metrics copied into the bundle

The click commands (:mod:`model_training.hybrid.cli`) only parse options and call these.
TensorFlow and the step modules are imported inside the steps, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from .. import dataset
from ..evaluate import LEAKY_LABEL, per_genre_table, plot_confusion, plot_curves, write_json
from ..plan import Plan, choose_split, left_out_of, make_plan
from .cache import DEFAULT_CACHE


def say(text: str) -> None:
    """Progress and results go to stderr (stdout stays free for other output)."""
    click.echo(text, err=True)


def read(path: Path) -> Any:
    """A JSON file an earlier step wrote (a usage error when it is missing)."""
    if not path.is_file():
        raise click.ClickException(f"{path} not found: run the earlier step first")
    return json.loads(path.read_text(encoding="utf-8"))


def log_command(out: Path, argv: Sequence[str]) -> None:
    """Append the exact command (``argv`` without the program) to ``<run>/commands.json``;
    it goes into the bundle."""
    path = out / "commands.json"
    done = json.loads(path.read_text()) if path.is_file() else []
    write_json([*done, "genrefy-train " + " ".join(shlex.quote(a) for a in argv)], path)


# --- the steps --------------------------------------------------------------------------------


def prepare(
    data: Path, out: Path, split: str, folds: int, augment: int, seed: int, splits: str | None, **kw
):
    from .windows import load_windows

    disc = dataset.discover(data, splits_dir=splits)
    mode = choose_split(disc, split)
    say(disc.summary())
    unused, repeats = left_out_of(disc.clips, mode, cache_dir=kw.get("cache_dir", DEFAULT_CACHE))
    plan = make_plan(disc.clips, mode, k=folds, seed=seed, left_out=unused)
    for tid, why in sorted(unused.items()):
        say(f"left out {tid}: {why}")
    if disc.missing_listed:
        say(f"{len(disc.missing_listed)} clips of the fault-filtered lists are not here")
    start = time.perf_counter()
    _, features = load_windows(disc.clips, plan.development(), n_augmented=augment, **kw)
    seconds = time.perf_counter() - start
    for (tid, variant), why in sorted(features.failures.items()):
        say(f"skipped {tid} ({variant}): {why}")
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
        "repetitions": [asdict(r) for r in repeats],
        "per_genre": disc.counts(),
        "per_role": by_role,
        "skipped": [{"clip": c, "reason": r} for c, r in disc.skipped]
        + [{"clip": f"{t} ({v})", "reason": r} for (t, v), r in features.failures.items()],
        "augmented_copies": augment,
        "extraction_seconds": round(seconds, 1),
        "extracted_now": features.computed,
        "plan": plan.to_dict(),
    }
    write_json(info, out / "plan.json")
    say(f"split {mode}: train {len(plan.train)}, valid {len(plan.valid)}, test {len(plan.test)}")
    say(f"features ready in {seconds:.1f} s ({features.computed} extracted now)")
    return info


def run_windows(out: Path, *, with_test: bool = False, **kw):
    """The plan and the windows of the development clips (and, when asked, the test clips)."""
    from .windows import load_windows

    info = read(out / "plan.json")
    plan = Plan.from_dict(info["plan"])
    disc = dataset.discover(info["data"], check_audio=False)
    wanted = set(plan.development()) | (set(plan.test) if with_test else set())
    clips = [c for c in disc.clips if c.track_id in wanted]
    windows, _ = load_windows(clips, plan.development(), n_augmented=info["augmented_copies"], **kw)
    return info, plan, windows


def hyperparameters(
    out: Path, hp_file: Path | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    from .network import DEFAULT_HP

    if hp_file is not None:
        chosen = read(hp_file)
        # A bundle.json works too: retrain a shipped model with its own hyperparameters.
        chosen = chosen.get("hyperparameters", chosen)
    else:
        best = out / "best_hp.json"
        chosen = read(best) if best.is_file() else {}
    chosen = {**chosen, **(overrides or {})}
    unknown = sorted(set(chosen) - set(DEFAULT_HP))
    if unknown:
        raise click.ClickException(f"unknown hyperparameters: {unknown}")
    return {**DEFAULT_HP, **chosen}


def tune(
    out: Path, trials: int, timeout: float | None, tune_folds: int, tune_epochs: int, **kw
) -> dict:
    from .tune import tune as search

    info, plan, windows = run_windows(out, **kw)
    summary = search(
        windows,
        plan.folds[:tune_folds],
        study_dir=out / "tune",
        trials=trials,
        timeout=timeout,
        epochs=tune_epochs,
        seed=plan.seed,
    )
    write_json(summary, out / "tune.json")
    if "best_hp" in summary:
        write_json(summary["best_hp"], out / "best_hp.json")
        say(f"best macro-F1 {summary['best_value']:.3f} (trial {summary['best_trial']})")
    say(f"{summary['complete']} complete, {summary['pruned']} pruned trials")
    return summary


def reseed(
    out: Path, trials: list[int], seeds: list[int], tune_folds: int, tune_epochs: int, **kw
) -> dict:
    from .tune import reseed as rerun

    info, plan, windows = run_windows(out, **kw)
    try:
        summary = rerun(
            windows,
            plan.folds[:tune_folds],
            study_dir=out / "tune",
            trials=trials,
            seeds=seeds,
            epochs=tune_epochs,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    write_json(summary, out / "reseed.json")
    write_json(summary["best_hp"], out / "best_hp.json")
    for number, row in summary["trials"].items():
        values = ", ".join(f"{v:.3f}" for v in row["seed_values"])
        say(f"trial {number}: study {row['study_value']}, seeds {values} → mean {row['mean']:.3f}")
    say(f"best: trial {summary['best_trial']} (written to best_hp.json)")
    return summary


def train(out: Path, hp_file: Path | None, fit: dict[str, int], **kw) -> dict:
    import numpy as np

    from .train import fit_clips

    info, plan, windows = run_windows(out, **kw)
    hp = hyperparameters(out, hp_file)
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
    write_json(summary, final / "history.json")
    say(f"final model: best epoch {summary['best_epoch']}, {summary['train_seconds']:.0f} s")
    return summary


def evaluate(
    out: Path,
    hp_file: Path | None,
    cv: bool,
    leaky: bool,
    test: bool,
    fit: dict[str, int],
    **kw,
) -> None:
    from . import experiments

    info, plan, windows = run_windows(out, with_test=test, **kw)
    hp = hyperparameters(out, hp_file)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    if cv:
        result = experiments.cross_validate(hp, windows, plan.folds, seed=plan.seed, **fit)
        histories = result.pop("histories")
        write_json(result, out / "cv.json")
        plot_confusion(
            result["confusion_all_folds"],
            report / "confusion_cv.png",
            title=f"cross-validation, all folds ({result['vote']} vote)",
        )
        plot_curves(histories, report / "curves_cv.png")
        acc, f1 = result["summary"]["track_accuracy"], result["summary"]["track_macro_f1"]
        say(
            f"CV track accuracy {acc['mean']:.3f} ± {acc['std']:.3f}, "
            f"macro-F1 {f1['mean']:.3f} ± {f1['std']:.3f} ({result['vote']} vote)"
        )
    if leaky:
        result = experiments.leaky_chunk_accuracy(
            hp, windows, plan.development(), seed=plan.seed, **fit
        )
        write_json(result, out / "leaky.json")
        say(
            f"chunk accuracy with a random chunk split: {result['chunk_accuracy']:.3f} "
            f"({LEAKY_LABEL})"
        )
    if test:
        import keras
        import numpy as np

        from .train import configure_tensorflow

        configure_tensorflow()
        model = keras.models.load_model(out / "final" / "model.keras", safe_mode=True)
        scaler = np.load(out / "final" / "scaler.npz", allow_pickle=False)
        vote = read(out / "cv.json")["vote"] if (out / "cv.json").is_file() else "mean"
        result = experiments.evaluate_model(
            model, scaler["mean"], scaler["scale"], windows.subset(plan.test), vote=vote
        )
        write_json(result, out / "test.json")
        track = result["track"][vote]
        plot_confusion(
            track["confusion"],
            report / "confusion_test.png",
            title=f"held-out test, {track['n']} tracks ({vote} vote)",
        )
        history = read(out / "final" / "history.json")["history"]
        plot_curves({"final": history}, report / "curves.png")
        say(f"held-out test ({track['n']} tracks):\n" + per_genre_table(track))


def export(out: Path, bundle: Path, version: str, example: Path | None, **kw) -> dict:
    from .calibrate import calibrate_bundle
    from .export import bundle_meta, export_from_run

    meta = bundle_meta(out, version=version)
    check = export_from_run(out, bundle, meta, example=example)
    say(f"bundle written to {bundle}: {json.dumps(check)}")
    cal = calibrate_bundle(bundle, out)
    choice = cal["threshold_choice"]
    say(
        f"calibrated on {cal['fitted_on']}: temperature {cal['temperature']}, "
        f"threshold {choice['threshold']} (precision {choice['precision']:.3f}, "
        f"coverage {choice['coverage']:.3f}{'' if choice['reached'] else ', 95 % not reached'})"
    )
    return check
