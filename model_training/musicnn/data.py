"""The port's taggrams of the shared clips, as the normalised tagger hears them (cached).

For every shared clip outside the ff-test split, through the LiteRT front-end:

* ``norm``    — the clip as training sees it
(:func:`genrefy_tagger.reading.loudness.normalise_clip`:
  silent edges cut, level brought to the bundle's target), every 1-s patch;
* ``windows`` — the tagger's own window plan
(:func:`genrefy_tagger.reading.musicnn.read_track_windows`),
  i.e. exactly what tagging feeds the head (validation);
* ``raw``     — the clip as decoded, unnormalised, every 1-s patch: what the published
  arrays were made from (the port-vs-published check on the overlap);
* ``aug<c>``  — production-style copy ``c`` (:mod:`model_training.production_augment`),
  normalised, every 2nd 1-s patch.

Each variant is one ``.npz`` (no pickle): ``tracks``, ``labels``, ``n`` (patches per
track), ``x`` (taggrams, float32) and ``penult`` (the front-end's 200 penultimate
units, float16) — the latter from a training-only LiteRT export with both outputs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from genrefy_tagger.reading import audio
from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.loudness import normalise_clip
from genrefy_tagger.reading.musicnn import (
    DEFAULT_CONFIG,
    read_track_windows,
    track_patches,
    window_patches,
)
from genrefy_tagger.reading.windows import WindowPolicy

from .. import production_augment
from ..dataset import discover
from ..litert import export_litert
from .fidelity import Taggrams

Predict = Callable[[np.ndarray], np.ndarray]  # (n, 187, 96) → (n, 50 + 200)

#: Where the variants (and the two-output front-end) are cached.
PORT_CACHE = Path(".cache") / "musicnn" / "port_v2"


def two_output_frontend(bundle: Path, out: Path) -> Path:
    """A LiteRT export of the front-end with tags and penultimate units concatenated."""
    if out.is_file():
        return out
    import keras

    model = keras.models.load_model(bundle / "frontend.keras", safe_mode=True, compile=False)
    joined = keras.layers.Concatenate(name="tags_penult")(
        [model.output, model.get_layer("penultimate").output]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    export_litert(keras.Model(model.input, joined), out)
    return out


def variant_patches(variant: str, path: Path, track_id: str, policy: WindowPolicy) -> np.ndarray:
    """(n, 187, 96) patches of one clip for ``variant`` (see the module docstring)."""
    sr = DEFAULT_CONFIG.sample_rate
    if variant == "windows":
        segments, _, _, _ = read_track_windows(path, policy=policy)
        return window_patches(segments)
    y = audio.load(path, sample_rate=sr)
    if variant == "raw":
        return track_patches(y)
    if variant.startswith("aug"):
        y = production_augment.apply(
            y, sr, production_augment.recipe_for(track_id, int(variant[3:]))
        )
    y = normalise_clip(
        y, sr, window_seconds=3.0, target_db=DEFAULT_CONFIG.loudness_db, floor_db=policy.silence_db
    )
    patches = track_patches(y)
    return patches[::2] if variant.startswith("aug") else patches


def build_variant(
    gtzan: Path,
    variant: str,
    out: Path,
    predict: Predict,
    *,
    splits: tuple[str, ...],
    policy: WindowPolicy,
    every: int = 1,
    log: Callable[[str], None] = print,
) -> Path:
    """Compute and save one variant for every ``every``-th clip in ``splits``.

    Clips are found by :func:`model_training.dataset.discover`, so the shared folder, the
    original release and the Kaggle copy all work ("none": in no fault-filtered list).
    """
    if out.is_file():
        return out
    clips = discover(gtzan, check_audio=False).clips
    rows = [c for c in clips if (c.ff_split or "none") in splits][::every]
    xs, ns, start = [], [], time.time()
    for i, row in enumerate(rows):
        p = variant_patches(variant, row.path, row.track_id, policy)
        xs.append(predict(p) if len(p) else np.zeros((0, 250), np.float32))
        ns.append(len(p))
        if (i + 1) % 50 == 0:
            log(f"  {variant}: {i + 1}/{len(rows)} clips ({time.time() - start:.0f} s)")
    x = np.concatenate(xs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        tracks=np.asarray([r.track_id for r in rows]),
        labels=np.asarray([GTZAN_GENRES.index(r.genre) for r in rows]),
        splits=np.asarray([r.ff_split or "none" for r in rows]),
        n=np.asarray(ns),
        x=x[:, :50].astype(np.float32),
        penult=x[:, 50:].astype(np.float16),
    )
    os.replace(tmp, out)
    log(f"{variant}: {len(rows)} clips, {len(x)} patches → {out} ({time.time() - start:.0f} s)")
    return out


def load_variant(path: Path, *, penult: bool = False) -> tuple[Taggrams, np.ndarray]:
    """A saved variant as :class:`Taggrams` (taggrams, or penultimate units) and its splits."""
    with np.load(path, allow_pickle=False) as z:
        cut = np.cumsum(z["n"])[:-1]
        x = z["penult"].astype(np.float32) if penult else z["x"]
        data = Taggrams(
            tuple(str(t) for t in z["tracks"]),
            z["labels"].astype(np.int64),
            tuple(np.split(x, cut)),
        )
        return data, z["splits"].astype(str)


def build_port_data(
    gtzan: Path,
    bundle: Path,
    variants: Sequence[str],
    *,
    aug_every: int,
    raw_every: int,
    threads: int,
    cache: Path = PORT_CACHE,
    log: Callable[[str], None] = print,
) -> None:
    """Cache ``variants`` of the shared non-test clips through ``bundle``'s front-end.

    ``windows`` and ``norm`` cover ff-train, ff-valid and the clips in no list; ``raw``
    every ``raw_every``-th ff-train clip (the fidelity re-check); ``aug<c>`` every
    ``aug_every``-th clip of ff-train and no list.
    """
    from genrefy_tagger.listening.lite import LiteRunner

    meta = json.loads((bundle / "bundle.json").read_text())
    policy = WindowPolicy(max_windows=int(meta.get("analysis", {}).get("max_windows", 10)))
    frontend = two_output_frontend(bundle, cache / "frontend_tags_penult.tflite")
    lite = LiteRunner(frontend, threads=threads)
    for v in variants:
        splits, every = ("train", "valid", "none"), 1
        if v == "raw":
            splits, every = ("train",), raw_every
        elif v.startswith("aug"):
            splits, every = ("train", "none"), aug_every
        build_variant(gtzan, v, cache / f"{v}.npz", lite, splits=splits, policy=policy,
                      every=every, log=log)  # fmt: skip
