"""The ``features`` kind: the hybrid CNN + BiLSTM + attention over
:mod:`~genrefy_tagger.reading.features`.

Its bundle holds the feature config, the scaler statistics of the training windows
and the network (``model.tflite`` for tagging, ``model.keras`` for training and checks).
"""

from __future__ import annotations

import numpy as np

from ...reading.config import ConfigError, FeatureConfig
from ...reading.features import window_features
from ..lite import LiteRunner
from ..model import Bundle, BundleError

KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"


class HybridModel:
    """Window features → genre probabilities, on LiteRT or, failing that, Keras.

    One instance per process: create it once, call :meth:`probabilities` many times.
    """

    def __init__(self, bundle: Bundle, *, backend: str = "auto", threads: int = 1) -> None:
        self.bundle = bundle
        meta_path = bundle.path / "bundle.json"
        try:
            self.config = FeatureConfig.from_dict(bundle.meta["feature_config"])
            self.mean = np.asarray(bundle.meta["scaler"]["mean"], dtype=np.float32)
            scale = np.asarray(bundle.meta["scaler"]["scale"], dtype=np.float32)
        except (KeyError, TypeError) as exc:
            raise BundleError(f"{meta_path} lacks a required field: {exc}") from exc
        except ConfigError as exc:
            raise BundleError(str(exc)) from exc
        n = self.config.n_features
        if self.mean.shape != (n,) or scale.shape != (n,):
            raise BundleError(f"{meta_path}: scaler statistics do not match the feature config")
        self.scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        files = bundle.meta.get("files", {})
        tflite = bundle.path / files.get("tflite", TFLITE_FILE)
        keras_file = bundle.path / files.get("keras", KERAS_FILE)
        if backend == "auto":
            backend = "litert" if tflite.is_file() else "keras"
        self.backend = backend
        if backend == "litert":
            self._run = LiteRunner(tflite, threads=threads)
        elif backend == "keras":
            if not keras_file.is_file():
                raise BundleError(f"bundle has neither {tflite.name} nor {keras_file.name}")
            import keras

            model = keras.models.load_model(keras_file, safe_mode=True, compile=False)
            self._run = lambda x: np.asarray(model.predict(x, verbose=0), dtype=np.float32)
        else:
            raise ValueError(f"unknown backend {backend!r}")

    @property
    def window(self) -> FeatureConfig:
        return self.config

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """(n, frames, n_features) → same shape, scaled with the training statistics."""
        return ((features - self.mean) / self.scale).astype(np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities per window.

        Parameters
        ----------
        features : np.ndarray [shape=(n, frames, n_features)]
            Raw (unscaled) output of :func:`~genrefy_tagger.reading.features.window_features`.

        Returns
        -------
        probs : np.ndarray [shape=(n, len(bundle.genres))], float32
        """
        x = self.standardise(features)
        if len(x) == 0:
            return np.zeros((0, len(self.bundle.genres)), dtype=np.float32)
        return self._run(x)

    def probabilities(self, segments: np.ndarray) -> np.ndarray:
        """(n, window_samples) windows → (n, n_genres), one row per window."""
        return self.predict(window_features(segments, config=self.config))


def load(bundle: Bundle, *, backend: str = "auto", threads: int = 1) -> HybridModel:
    return HybridModel(bundle, backend=backend, threads=threads)
