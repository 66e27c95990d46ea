"""Writing a model bundle and proving the tagger can use it.

A bundle folder gets ``model.keras``, ``model.tflite`` (LiteRT, static batch 1:
the BiLSTM does not convert with a dynamic batch) and ``bundle.json`` (through
:func:`genrefy_tagger.model.write_bundle_json`). After writing, :func:`verify`
checks that LiteRT and Keras agree and that the tagger's own
:class:`~genrefy_tagger.engine.Analyzer` classifies a real clip with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.config import GTZAN_GENRES, FeatureConfig

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

    from genrefy_tagger.model import write_bundle_json

    config = config or FeatureConfig()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / KERAS_FILE)
    model.export(
        str(folder / TFLITE_FILE),
        format="litert",
        input_signature=[
            keras.InputSpec(shape=(1, config.n_frames, config.n_features), dtype="float32")
        ],
        verbose=False,
    )
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
    from genrefy_tagger.engine import Analyzer
    from genrefy_tagger.model import Predictor, load_bundle

    bundle = load_bundle(folder)
    lite = Predictor(bundle, backend="litert").predict(features)
    ker = Predictor(bundle, backend="keras").predict(features)
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
