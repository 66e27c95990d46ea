"""The hybrid model shipped in ``genrefy_tagger/models/hybrid`` is complete and consistent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genrefy_tagger.listening.kinds.hybrid import HybridModel
from genrefy_tagger.listening.model import bundled_models, default_bundle_dir, load_bundle
from genrefy_tagger.reading.config import GTZAN_GENRES, FeatureConfig

BUNDLE = bundled_models()["hybrid"]


def _a_clip(gtzan_dir: Path) -> Path:
    return sorted((gtzan_dir / "genres" / "metal").glob("metal.*.ogg"))[0]


def test_bundle_json_describes_the_model() -> None:
    meta = json.loads((BUNDLE / "bundle.json").read_text(encoding="utf-8"))
    bundle = load_bundle(BUNDLE)
    assert bundle.genres == GTZAN_GENRES
    model = HybridModel(bundle)
    assert model.config == model.window == FeatureConfig()
    assert meta["kind"] == "features" and meta["vote"] in ("mean", "logmean")
    assert 0.0 <= meta["min_confidence"] < 1.0
    for key in ("architecture", "hyperparameters", "metrics", "training_data", "commands"):
        assert meta.get(key), key
    assert meta["package_version"]
    assert np.all(model.scale > 0) and np.isfinite(model.mean).all()
    sizes = [(BUNDLE / f).stat().st_size for f in meta["files"].values()]
    assert max(sizes) < 5_000_000  # "a few MB at most"


def test_keras_model_loads_in_safe_mode() -> None:
    import keras

    model = keras.models.load_model(BUNDLE / "model.keras", safe_mode=True, compile=False)
    config = FeatureConfig()
    assert model.input_shape == (None, config.n_frames, config.n_features)
    assert model.output_shape == (None, len(GTZAN_GENRES))


@pytest.mark.shared
def test_litert_and_keras_agree_on_a_real_clip(gtzan_dir: Path) -> None:
    from model_training.hybrid.cache import tagging_features

    bundle = load_bundle(BUNDLE)
    features = tagging_features(_a_clip(gtzan_dir), config=HybridModel(bundle).config)
    assert features.shape == (10, 130, 102)
    lite = HybridModel(bundle, backend="litert").predict(features)
    ker = HybridModel(bundle, backend="keras").predict(features)
    assert lite.shape == (10, len(GTZAN_GENRES))
    np.testing.assert_allclose(lite.sum(1), 1.0, atol=1e-5)
    assert np.max(np.abs(lite - ker)) < 1e-4
    assert (lite.argmax(1) == ker.argmax(1)).all()


@pytest.mark.shared
def test_analyzer_classifies_a_real_clip(gtzan_dir: Path) -> None:
    from genrefy_tagger.listening.engine import Analyzer

    analysis = Analyzer(BUNDLE).analyse(_a_clip(gtzan_dir))
    assert analysis.error is None and analysis.decision is not None
    assert analysis.decision.genre in GTZAN_GENRES
    assert analysis.decision.n_windows == 10
    assert abs(sum(score for _, score in analysis.decision.ranked) - 1.0) < 1e-5


def test_default_model_is_a_shipped_bundle():
    """``models/default.json`` points at a shipped bundle that loads."""
    default = default_bundle_dir()
    assert default.name in bundled_models()
    assert load_bundle(None).path == default


def test_shipped_default_is_calibrated_and_normalised():
    """The default bundle carries its temperature, threshold and level target, and uses them."""
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.listening.model import load_bundle
    from genrefy_tagger.reading.loudness import TARGET_DB

    bundle = load_bundle("musicnn")
    cal = bundle.meta["calibration"]
    assert bundle.temperature == cal["temperature"] != 1.0
    # The threshold is chosen with the outside rule's, on GTZAN ff-valid + allmusic.
    choice = bundle.meta["outside"]["threshold_choice"]
    assert choice["precision"] >= 0.95 and choice["outside_written"] <= 0.10
    assert bundle.min_confidence == choice["min_confidence"]
    assert cal["threshold_superseded_by"] == "outside.threshold_choice"
    assert MusicnnPredictor(bundle.path).config.loudness_db == TARGET_DB
    assert HybridModel(load_bundle("hybrid")).config.loudness_db == TARGET_DB
