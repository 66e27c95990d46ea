"""The hybrid model's training windows: features of whole clips, stacked and scaled.

* Windows of a clip stay together (:class:`WindowSet` keeps each window's track).
* The scaler is fitted on the training windows only (:func:`fit_scaler`) and applied
  with the tagger's arithmetic (:func:`standardise`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES, FeatureConfig

from ..dataset import Clip
from .cache import DEFAULT_CACHE, ORIGINAL, FeatureSet, extract, variant_names


@dataclass
class WindowSet:
    """Windows of a group of clips.

    x      : (n, n_frames, n_features) float32 features (raw or standardised)
    y      : (n,) int label index into ``GTZAN_GENRES``
    track  : (n,) int index into ``track_ids``
    copy   : (n,) int 0 for the original clip, k + 1 for augmented copy k
    """

    x: np.ndarray
    y: np.ndarray
    track: np.ndarray
    copy: np.ndarray
    track_ids: list[str]
    track_labels: np.ndarray  # (n_tracks,) int

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, track_ids: Sequence[str], *, augmented: bool = True) -> WindowSet:
        """The windows of ``track_ids`` (absent ids are ignored), tracks renumbered.

        ``augmented=False`` keeps only the original windows (what evaluation looks at).
        """
        index = {t: i for i, t in enumerate(self.track_ids)}
        old = [index[t] for t in track_ids if t in index]
        remap = np.full(len(self.track_ids), -1)
        remap[old] = np.arange(len(old))
        keep = remap[self.track] >= 0
        if not augmented:
            keep &= self.copy == 0
        return WindowSet(
            self.x[keep],
            self.y[keep],
            remap[self.track[keep]],
            self.copy[keep],
            [self.track_ids[i] for i in old],
            self.track_labels[old],
        )


def assemble(
    clips: Sequence[Clip], features: FeatureSet, variants: Sequence[str] = (ORIGINAL,)
) -> WindowSet:
    """Stack the cached windows of ``clips`` (those with features; failures are skipped)."""
    xs, ys, tracks, copies, ids, labels = [], [], [], [], [], []
    for clip in clips:
        if (clip.track_id, ORIGINAL) not in features.features:
            continue  # unreadable clip: reported by the caller, not trained on
        t = len(ids)
        ids.append(clip.track_id)
        labels.append(GTZAN_GENRES.index(clip.genre))
        for k, variant in enumerate(variants):
            f = features.features.get((clip.track_id, variant))
            if f is None or len(f) == 0:
                continue
            xs.append(f)
            ys.append(np.full(len(f), labels[-1]))
            tracks.append(np.full(len(f), t))
            copies.append(np.full(len(f), k))
    if not xs:
        raise ValueError("no windows to assemble")
    return WindowSet(
        np.concatenate(xs).astype(np.float32, copy=False),
        np.concatenate(ys).astype(np.int64),
        np.concatenate(tracks).astype(np.int64),
        np.concatenate(copies).astype(np.int64),
        ids,
        np.asarray(labels, dtype=np.int64),
    )


def load_windows(
    clips: Sequence[Clip],
    augment_ids: Sequence[str],
    *,
    n_augmented: int,
    config: FeatureConfig | None = None,
    cache_dir: str | os.PathLike = DEFAULT_CACHE,
    jobs: int = 2,
    progress: bool = True,
) -> tuple[WindowSet, FeatureSet]:
    """Extract (or read from the cache) and stack the windows of ``clips``.

    Clips in ``augment_ids`` also get ``n_augmented`` augmented copies. Clips that
    could not be decoded are left out; they are in the returned ``FeatureSet.failures``.
    """
    augmented = set(augment_ids)
    variants = variant_names(n_augmented)
    wanted = {c.track_id: variants if c.track_id in augmented else [ORIGINAL] for c in clips}
    features = extract(
        clips, wanted, config=config, cache_dir=cache_dir, jobs=jobs, progress=progress
    )
    return assemble(clips, features, variants), features


def fit_scaler(x: np.ndarray, *, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature-column mean and scale over every frame of the training windows.

    Parameters
    ----------
    x : np.ndarray [shape=(n, n_frames, n_features)]

    Returns
    -------
    mean, scale : np.ndarray [shape=(n_features,)], float64
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    for i in range(0, len(x), chunk):  # partial_fit: never a float64 copy of everything
        scaler.partial_fit(x[i : i + chunk].reshape(-1, x.shape[-1]))
    return scaler.mean_, scaler.scale_


def standardise(ws: WindowSet, mean: np.ndarray, scale: np.ndarray) -> WindowSet:
    """A copy of ``ws`` with standardised features (the same arithmetic as the tagger's)."""
    mean32, scale32 = mean.astype(np.float32), np.where(scale > 0, scale, 1.0).astype(np.float32)
    x = ((ws.x - mean32) / scale32).astype(np.float32)
    return WindowSet(x, ws.y, ws.track, ws.copy, ws.track_ids, ws.track_labels)
