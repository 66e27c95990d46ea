"""Model bundles: network weights plus one JSON file — finding and reading them.

A bundle is a folder::

    bundle.json   kind, genres, vote rule, threshold, calibration, metrics,
                  training-data description, package version, and what its kind
                  needs (e.g. the feature config and scaler statistics)
    *.keras       the Keras networks (training side; loaded in safe mode)
    *.tflite      the same networks exported for LiteRT (tagging side)

This module knows nothing of kinds: :mod:`genrefy_tagger.listening.kinds` turns a
:class:`Bundle` into a runnable model. Tagging runs the ``.tflite`` files on LiteRT
(0.2 s to import) rather than TensorFlow (6 s); tests check both agree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = "genrefy-bundle"
BUNDLE_FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
VOTE_RULES = ("mean", "logmean")


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


def shipped_defaults() -> list[tuple[str, bool, float, int]]:
    """(name, is default, threshold, windows) of each shipped model, for help texts.

    Read from the bundles themselves so that ``--help`` never quotes a stale number.
    """
    default = default_bundle_dir().name
    rows = []
    for name, folder in bundled_models().items():
        bundle = load_bundle(folder)
        rows.append((name, name == default, bundle.min_confidence, bundle.max_windows))
    return sorted(rows, key=lambda row: not row[1])


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
    if meta.get("vote", "mean") not in VOTE_RULES:
        raise BundleError(f"{meta_path}: unknown vote rule {meta.get('vote')!r}")
    genres = meta.get("genres")
    if not isinstance(genres, list) or not genres:
        raise BundleError(f"{meta_path}: no genres")
    return Bundle(
        path=folder,
        name=str(meta.get("name", folder.name)),
        model_version=str(meta.get("model_version", "0")),
        genres=tuple(genres),
        kind=str(meta.get("kind", "features")),
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
