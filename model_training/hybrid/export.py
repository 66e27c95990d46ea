"""Writing a model bundle and proving the tagger can use it.

A bundle folder gets ``model.keras``, ``model.tflite`` (LiteRT, static batch 1:
the BiLSTM does not convert with a dynamic batch) and ``bundle.json`` (through
:func:`genrefy_tagger.listening.model.write_bundle_json`). After writing, :func:`verify`
checks that LiteRT and Keras agree and that the tagger's own
:class:`~genrefy_tagger.listening.engine.Analyzer` classifies a real clip with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES, FeatureConfig

from ..litert import export_litert

KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
#: LiteRT and Keras must agree to this (probabilities); float32 kernels differ slightly.
AGREEMENT_TOLERANCE = 1e-4


def export_bundle(
    model: Any,
    folder: str | os.PathLike,
    *,
    mean: np.ndarray,
    scale: np.ndarray,
    meta: dict[str, Any],
    config: FeatureConfig | None = None,
) -> Path:
    """Save ``model`` and its metadata as a bundle in ``folder``.

    Parameters
    ----------
    mean, scale : (n_features,) the training scaler.
    meta : the rest of ``bundle.json`` (name, model_version, vote, min_confidence,
        metrics, training_data, commands, ...); genres, feature_config, scaler and
        files are filled in here.
    """
    import keras

    from genrefy_tagger.listening.model import write_bundle_json

    config = config or FeatureConfig()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # An uncompiled copy: the file then holds no optimizer state (a third of its size).
    lean = keras.models.clone_model(model)
    lean.set_weights(model.get_weights())
    lean.save(folder / KERAS_FILE)
    export_litert(model, folder / TFLITE_FILE, shape=(config.n_frames, config.n_features))
    full = {
        "name": meta.get("name", "gtzan-hybrid"),
        "model_version": meta.get("model_version", "0"),
        "kind": "features",
        **meta,
        "genres": list(GTZAN_GENRES),
        "feature_config": config.to_dict(),
        "scaler": {"mean": np.asarray(mean).tolist(), "scale": np.asarray(scale).tolist()},
        "files": {"keras": KERAS_FILE, "tflite": TFLITE_FILE},
    }
    write_bundle_json(folder, full)
    return folder


def verify(folder: str | os.PathLike, features: np.ndarray, clip: str | os.PathLike | None) -> dict:
    """Check a written bundle end to end.

    Parameters
    ----------
    features : (n, n_frames, n_features) raw window features of some real audio.
    clip : an audio file for the Analyzer (skipped when None).

    Returns ``{"max_abs_diff", "same_top": bool, "analyzer": {...}}``; raises
    ``AssertionError`` when LiteRT and Keras disagree beyond the tolerance or
    the Analyzer fails.
    """
    from genrefy_tagger.listening.engine import Analyzer
    from genrefy_tagger.listening.kinds.hybrid import HybridModel
    from genrefy_tagger.listening.model import load_bundle

    bundle = load_bundle(folder)
    lite = HybridModel(bundle, backend="litert").predict(features)
    ker = HybridModel(bundle, backend="keras").predict(features)
    diff = float(np.max(np.abs(lite - ker)))
    same_top = bool(np.all(lite.argmax(1) == ker.argmax(1)))
    if diff > AGREEMENT_TOLERANCE:
        raise AssertionError(f"LiteRT and Keras disagree by {diff:.2e}")
    report: dict[str, Any] = {"max_abs_diff": diff, "same_top": same_top, "n_windows": len(lite)}
    if clip is not None:
        analysis = Analyzer(bundle).analyse(clip)
        if analysis.decision is None:
            raise AssertionError(f"Analyzer gave no decision for {clip}: {analysis.error}")
        report["analyzer"] = {
            "clip": Path(clip).name,
            "genre": analysis.decision.genre,
            "confidence": round(analysis.decision.confidence, 4),
        }
    return report


def bundle_size(folder: str | os.PathLike) -> int:
    """Bytes of the model files and JSON (not the report)."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# --- from a run folder (see ``model_training.hybrid.steps``) -----------------------------

ARCHITECTURE = (
    "3 Conv2D blocks (BN, ReLU, max-pool mostly along the feature axis, spatial dropout) over "
    "130 frames x 102 features -> BiLSTM over 32 time steps -> attention pooling -> dropout -> "
    "softmax over 10 GTZAN genres"
)


def _load(path: Path) -> Any:
    import json

    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _track_metrics(result: dict[str, Any], vote: str) -> dict[str, Any]:
    """The compact form of an ``evaluate_predictions`` result (no per-track lists)."""
    track = result["track"][vote]
    other = next(r for r in result["track"] if r != vote)
    return {
        "tracks": track["n"],
        "vote": vote,
        "track_accuracy": round(track["accuracy"], 4),
        "track_macro_f1": round(track["macro_f1"], 4),
        "macro_f1_over": track["genres_present"],
        f"track_accuracy_{other}_vote": round(result["track"][other]["accuracy"], 4),
        f"track_macro_f1_{other}_vote": round(result["track"][other]["macro_f1"], 4),
        "chunk_accuracy": round(result["chunk"]["accuracy"], 4),
        "per_genre": {
            g: {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            for g, row in track["per_genre"].items()
        },
        "confusion": track["confusion"],
    }


def bundle_meta(run: str | os.PathLike, *, version: str, name: str = "gtzan-hybrid") -> dict:
    """Assemble ``bundle.json``'s description of the model from a run folder's files."""
    import genrefy_tagger

    run = Path(run)
    plan = _load(run / "plan.json")
    final = _load(run / "final" / "history.json")
    if plan is None or final is None:
        raise FileNotFoundError(f"{run} lacks plan.json or final/history.json: train first")
    cv, test = _load(run / "cv.json"), _load(run / "test.json")
    leaky, tune = _load(run / "leaky.json"), _load(run / "tune.json")
    vote = cv["vote"] if cv else "mean"
    metrics: dict[str, Any] = {}
    if cv:
        metrics["cross_validation"] = {
            **cv["summary"],
            "clips": sum(len(f["held_out"]) for f in cv["folds"]),
            "vote_comparison": cv["vote_comparison"],
            "note": "track-level, stratified k-fold over the development clips; each fold "
            "early-stops on clips carved from its own training side",
        }
    if test:
        metrics["held_out_test"] = {
            **_track_metrics(test, vote),
            "note": "evaluated once; these clips were never used for training, early stopping, "
            "tuning, the scaler or the threshold",
        }
    if leaky:
        metrics["random_chunk_split"] = leaky
    if tune:
        metrics["tuning"] = {
            k: tune.get(k) for k in ("objective", "complete", "pruned", "best_value", "best_trial")
        }
    metrics["final_training"] = {
        k: final[k] for k in ("best_epoch", "epochs_run", "train_seconds", "train_clips")
    }
    p = plan["plan"]
    return {
        "name": name,
        "model_version": version,
        "kind": "features",
        "architecture": ARCHITECTURE,
        "vote": vote,
        "min_confidence": cv["threshold"]["min_confidence"] if cv else 0.5,
        "abstain": (
            {k: cv["threshold"][k] for k in ("rule", "abstain_rate", "kept_accuracy")}
            if cv
            else None
        ),
        "hyperparameters": final["hyperparameters"],
        "metrics": metrics,
        "training_data": {
            "source": f"GTZAN ({plan['layout']} layout): {plan['clips']} readable clips",
            "per_genre": plan["per_genre"],
            "split": p["split"],
            "trained_on": plan["per_role"]["train"],
            "early_stopping_on": plan["per_role"]["valid"],
            "held_out": plan["per_role"]["test"],
            "held_out_rule": (
                "the fault-filtered test split (Kereliuk, Sturm & Larsen 2015)"
                if any(p["test"])
                else "none"
            ),
            "augmented_copies_per_training_clip": plan["augmented_copies"],
            "skipped": plan["skipped"],
            # Repeated recordings and unlisted clips of scored artists (plan.left_out).
            "left_out": p.get("left_out", {}),
        },
        "package_version": genrefy_tagger.__version__,
        "commands": _load(run / "commands.json") or [],
        # Free-text provenance a person adds to <run>/notes.json (e.g. how a choice was made).
        **({"notes": notes} if (notes := _load(run / "notes.json")) else {}),
    }


def export_from_run(
    run: str | os.PathLike,
    folder: str | os.PathLike,
    meta: dict[str, Any],
    *,
    example: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Export a run's final model as a bundle with ``report/``, then :func:`verify` it.

    ``example``: an audio file for the check (default: the first early-stopping clip).
    """
    import json
    import shutil

    import keras

    from genrefy_tagger.listening.model import write_bundle_json

    from ..dataset import discover
    from .cache import tagging_features

    run, folder = Path(run), Path(folder)
    model = keras.models.load_model(run / "final" / "model.keras", safe_mode=True, compile=False)
    with np.load(run / "final" / "scaler.npz", allow_pickle=False) as scaler:
        mean, scale = scaler["mean"], scaler["scale"]
    export_bundle(model, folder, mean=mean, scale=scale, meta=meta)
    report = folder / "report"
    report.mkdir(exist_ok=True)
    for png in sorted((run / "report").glob("*.png")):
        shutil.copy2(png, report / png.name)
    if example is None:
        plan = _load(run / "plan.json")
        ids = plan["plan"]["valid"]  # a development clip: the test clips stay untouched
        clips = {c.track_id: c for c in discover(plan["data"], check_audio=False).clips}
        example = clips[ids[0]].path
    check = verify(folder, tagging_features(example, config=FeatureConfig()), example)
    check["bundle_bytes"] = bundle_size(folder)
    full = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
    full["checks"] = check
    write_bundle_json(folder, {k: v for k, v in full.items() if not k.startswith("format")})
    (report / "metrics.json").write_text(json.dumps(meta["metrics"], indent=2) + "\n")
    return check
