"""Fixtures shared by the whole suite.

``gtzan_dir``: the real GTZAN clips. Found at ``$GENREFY_GTZAN`` or at
``../shared/gtzan`` beside the checkout; absent, the tests that need them skip
with the reason — unless ``GENREFY_REQUIRE_SHARED=1`` (set by ``.ci/run``),
which turns that skip into a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for tests/audiofiles.py

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _gtzan_root() -> Path | None:
    env = os.environ.get("GENREFY_GTZAN")
    candidate = Path(env) if env else ROOT.parent / "shared" / "gtzan"
    return candidate if (candidate / "manifest.csv").is_file() else None


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Journals and the analysis cache of every test go to a temporary folder, never ~."""
    if "GENREFY_STATE_DIR" not in os.environ:
        os.environ["GENREFY_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def allmusic_dir() -> Path:
    """``../shared/allmusic`` (or ``$GENREFY_ALLMUSIC``): real previews with AllMusic genres."""
    env = os.environ.get("GENREFY_ALLMUSIC")
    root = Path(env) if env else ROOT.parent / "shared" / "allmusic"
    if not (root / "manifest.csv").is_file():
        reason = "allmusic previews not found: set GENREFY_ALLMUSIC or use ../shared/allmusic"
        if os.environ.get("GENREFY_REQUIRE_SHARED") == "1":
            pytest.fail(reason + " (GENREFY_REQUIRE_SHARED=1 makes this a failure)")
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def gtzan_dir() -> Path:
    """The folder holding ``manifest.csv``, ``genres/`` and ``splits/``."""
    root = _gtzan_root()
    if root is None:
        reason = (
            "GTZAN clips not found: set GENREFY_GTZAN to a folder with manifest.csv "
            "or place them at ../shared/gtzan"
        )
        if os.environ.get("GENREFY_REQUIRE_SHARED") == "1":
            pytest.fail(reason + " (GENREFY_REQUIRE_SHARED=1 makes this a failure)")
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, untrained but real bundle (Keras + LiteRT + JSON) for engine tests."""
    import keras

    from genrefy_tagger.listening.model import write_bundle_json
    from genrefy_tagger.reading.config import GTZAN_GENRES, FeatureConfig

    config = FeatureConfig()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((config.n_frames, config.n_features))
    x = keras.layers.Conv1D(8, 5, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(len(GTZAN_GENRES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("tiny_bundle")
    model.save(folder / "model.keras")
    model.export(
        str(folder / "model.tflite"),
        format="litert",
        input_signature=[
            keras.InputSpec(shape=(1, config.n_frames, config.n_features), dtype="float32")
        ],
        verbose=False,
    )
    write_bundle_json(
        folder,
        {
            "name": "tiny-test",
            "model_version": "0",
            "kind": "features",
            "genres": list(GTZAN_GENRES),
            "feature_config": config.to_dict(),
            "scaler": {
                "mean": np.zeros(config.n_features).tolist(),
                "scale": np.full(config.n_features, 20.0).tolist(),
            },
            "vote": "mean",
            "min_confidence": 0.0,
            "files": {"keras": "model.keras", "tflite": "model.tflite"},
        },
    )
    return folder
