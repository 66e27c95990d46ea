"""Model bundles: network weights plus one JSON file, and running them.

A bundle is a folder::

    bundle.json   genres, feature config, scaler statistics, vote rule, metrics,
                  training-data description, package version
    model.keras   the Keras model (training side; loaded in safe mode)
    model.tflite  the same network exported for LiteRT (tagging side)

Tagging runs ``model.tflite`` on LiteRT (0.2 s to import) rather than
TensorFlow (6 s); a test checks both give the same predictions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, FeatureConfig

BUNDLE_FORMAT = "genrefy-bundle"
BUNDLE_FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
VOTE_RULES = ("mean", "logmean")
#: ``features``: the hybrid network over :mod:`genrefy_tagger.features`;
#: ``musicnn``: the pretrained MSD-musicnn front-end + head (:mod:`genrefy_tagger.musicnn`).
BUNDLE_KINDS = ("features", "musicnn")


class BundleError(Exception):
    """A model bundle that is missing, malformed or incompatible."""


def models_dir() -> Path:
    """Where the bundles shipped inside the package live."""
    return Path(str(resources.files("genrefy_tagger") / "models"))


def bundled_models() -> dict[str, Path]:
    """Name → folder of every bundle shipped inside the package."""
    return {
        p.name: p
        for p in sorted(models_dir().iterdir())
        if p.is_dir() and (p / BUNDLE_JSON).is_file()
    }


def default_bundle_dir() -> Path:
    """The model used when none is named: the one ``models/default.json`` points at.

    It names whichever shipped bundle measured better on held-out data.
    """
    pointer = models_dir() / "default.json"
    name = json.loads(pointer.read_text(encoding="utf-8"))["default"]
    return models_dir() / name


def resolve_bundle(spec: str | os.PathLike | None) -> Path:
    """A bundle folder from ``None`` (the default), a shipped model's name, or a path."""
    if spec is None:
        return default_bundle_dir()
    shipped = bundled_models()
    if isinstance(spec, str) and spec in shipped and not Path(spec).exists():
        return shipped[spec]
    return Path(spec)


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    model_version: str
    genres: tuple[str, ...]
    feature_config: FeatureConfig | None  # None for a musicnn bundle (its own config)
    scaler_mean: np.ndarray  # (n_features,)
    scaler_scale: np.ndarray  # (n_features,)
    kind: str = "features"
    vote: str = "mean"
    min_confidence: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0  # calibration of the pooled probabilities (vote.calibrate)

    @property
    def tag(self) -> str:
        """Short provenance string, e.g. ``gtzan-hybrid@2026.11.25``."""
        return f"{self.name}@{self.model_version}"

    @property
    def max_windows(self) -> int:
        """How many 3-s windows per track this model is meant to hear (its speed/accuracy point)."""
        return int(self.meta.get("analysis", {}).get("max_windows", 10))

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """(n, frames, n_features) → same shape, scaled with the training statistics."""
        return ((features - self.scaler_mean) / self.scaler_scale).astype(np.float32)


def load_bundle(path: str | os.PathLike | None = None) -> Bundle:
    """Read and check ``bundle.json`` in ``path``: a folder, a shipped model's name, or
    None for the default shipped model."""
    folder = resolve_bundle(path)
    if folder.is_file() and folder.name == BUNDLE_JSON:
        folder = folder.parent
    meta_path = folder / BUNDLE_JSON
    if not meta_path.is_file():
        raise BundleError(f"no {BUNDLE_JSON} in {folder}: not a genrefy model bundle")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"cannot read {meta_path}: {exc}") from exc
    if meta.get("format") != BUNDLE_FORMAT or meta.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{meta_path} is not a genrefy bundle of format version {BUNDLE_FORMAT_VERSION}"
        )
    kind = meta.get("kind", "features")
    if kind not in BUNDLE_KINDS:
        raise BundleError(f"{meta_path}: unknown model kind {kind!r}; upgrade genrefy")
    if meta.get("vote", "mean") not in VOTE_RULES:
        raise BundleError(f"{meta_path}: unknown vote rule {meta.get('vote')!r}")
    if kind == "musicnn":
        return _bundle(folder, meta, kind, None, np.zeros(0, np.float32), np.ones(0, np.float32))
    try:
        config = FeatureConfig.from_dict(meta["feature_config"])
        mean = np.asarray(meta["scaler"]["mean"], dtype=np.float32)
        scale = np.asarray(meta["scaler"]["scale"], dtype=np.float32)
        genres = tuple(meta["genres"])
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{meta_path} lacks a required field: {exc}") from exc
    except ConfigError as exc:
        raise BundleError(str(exc)) from exc
    if mean.shape != (config.n_features,) or scale.shape != (config.n_features,):
        raise BundleError(f"{meta_path}: scaler statistics do not match the feature config")
    if not genres:
        raise BundleError(f"{meta_path}: no genres")
    return _bundle(folder, meta, kind, config, mean, np.where(scale > 0, scale, 1.0))


def _bundle(
    folder: Path,
    meta: dict[str, Any],
    kind: str,
    config: FeatureConfig | None,
    mean: np.ndarray,
    scale: np.ndarray,
) -> Bundle:
    return Bundle(
        path=folder,
        name=str(meta.get("name", folder.name)),
        model_version=str(meta.get("model_version", "0")),
        genres=tuple(meta["genres"]),
        feature_config=config,
        scaler_mean=mean.astype(np.float32),
        scaler_scale=scale.astype(np.float32),
        kind=kind,
        vote=meta.get("vote", "mean"),
        min_confidence=float(meta.get("min_confidence", 0.5)),
        meta=meta,
        temperature=float(meta.get("calibration", {}).get("temperature", 1.0)),
    )


def write_bundle_json(folder: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``bundle.json`` (used by training's export); fills the format fields."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, **meta}
    out = folder / BUNDLE_JSON
    out.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def lite_interpreter(path: Path, *, threads: int = 1) -> Any:
    """A LiteRT interpreter for ``path``, tensors allocated.

    LiteRT (``ai-edge-litert``) where it has wheels; TensorFlow's own copy of the
    interpreter otherwise (e.g. on Windows, where LiteRT has none).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter
        except ImportError as exc:
            raise BundleError(
                "running the model needs ai-edge-litert (pip install ai-edge-litert) or tensorflow"
            ) from exc
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    # LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to fd 2
    # here, once per process, and offers no setting to stop it; real errors still raise.
    from .audio import quiet_decoder

    with quiet_decoder():
        interpreter.allocate_tensors()
    return interpreter


class Predictor:
    """Window features → genre probabilities, on LiteRT or, failing that, Keras.

    One instance per process: create it once, call :meth:`predict` many times.
    """

    def __init__(self, bundle: Bundle, *, backend: str = "auto", threads: int = 1) -> None:
        self.bundle = bundle
        tflite = bundle.path / bundle.meta.get("files", {}).get("tflite", TFLITE_FILE)
        keras_file = bundle.path / bundle.meta.get("files", {}).get("keras", KERAS_FILE)
        if backend == "auto":
            backend = "litert" if tflite.is_file() else "keras"
        self.backend = backend
        if backend == "litert":
            if not tflite.is_file():
                raise BundleError(f"bundle has no {tflite.name}")
            self._interp = lite_interpreter(tflite, threads=threads)
            self._in = self._interp.get_input_details()[0]
            self._out = self._interp.get_output_details()[0]
        elif backend == "keras":
            if not keras_file.is_file():
                raise BundleError(f"bundle has neither {tflite.name} nor {keras_file.name}")
            import keras

            self._keras = keras.models.load_model(keras_file, safe_mode=True, compile=False)
        else:
            raise ValueError(f"unknown backend {backend!r}")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities per window.

        Parameters
        ----------
        features : np.ndarray [shape=(n, frames, n_features)]
            Raw (unscaled) output of :func:`~genrefy_tagger.features.window_features`.

        Returns
        -------
        probs : np.ndarray [shape=(n, len(bundle.genres))], float32
        """
        x = self.bundle.standardise(features)
        if len(x) == 0:
            return np.zeros((0, len(self.bundle.genres)), dtype=np.float32)
        if self.backend == "keras":
            return np.asarray(self._keras.predict(x, verbose=0), dtype=np.float32)
        batch = int(self._in["shape"][0])
        out = []
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            if len(chunk) < batch:  # the export has a static batch size
                chunk = np.concatenate(
                    [chunk, np.zeros((batch - len(chunk), *x.shape[1:]), x.dtype)]
                )
            self._interp.set_tensor(self._in["index"], chunk)
            self._interp.invoke()
            out.append(self._interp.get_tensor(self._out["index"]).copy())
        return np.concatenate(out)[: len(x)].astype(np.float32)
