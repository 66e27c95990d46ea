"""Is the port faithful? Our taggrams of the shared clips vs the published arrays.

The published arrays (``../shared/gtzan/musicnn_taggrams``) were computed by the
original musicnn code from the original GTZAN ``.au`` files; the shared clips are
Ogg re-encodes of some of them. For every shared clip present in the arrays we
compute all patches (one every 61 frames, as musicnn's ``input_overlap=1``) with our
own audio path and network, align them from the start (counts may differ by one
at the end) and compare.

This module also caches the port's taggrams of all shared clips (``.cache/musicnn``)
for the head's validation and the end-to-end check: every 1-s patch, and the
tagger's own window plan (10 spread 3-s windows).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.reading import audio
from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.musicnn import (
    DEFAULT_CONFIG,
    read_track_windows,
    track_patches,
    window_patches,
)
from genrefy_tagger.reading.windows import WindowPolicy

TAGGRAM_FILES = {"ff_train": "ff_train_taggrams.npz", "ff_test": "ff_test_taggrams.npz"}


@dataclass(frozen=True)
class Taggrams:
    """Per-patch taggrams grouped by track (the published arrays, or ours)."""

    tracks: tuple[str, ...]  # track ids such as "blues.00029"
    labels: np.ndarray  # (n_tracks,) genre index in GTZAN_GENRES order
    patches: tuple[np.ndarray, ...]  # per track (n_patches_i, 50), time order

    def subset(self, keep: np.ndarray) -> Taggrams:
        idx = np.flatnonzero(keep)
        return Taggrams(
            tuple(self.tracks[i] for i in idx),
            self.labels[idx],
            tuple(self.patches[i] for i in idx),
        )


def track_id(path_like: str) -> str:
    """``blues/blues.00029.au`` or ``…/blues.00029.ogg`` → ``blues.00029``."""
    name = path_like.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if name.count(".") >= 2 else name


def load_published(path: str | os.PathLike) -> Taggrams:
    """One of the published ``*_taggrams.npz`` files, grouped by track (order kept)."""
    with np.load(path, allow_pickle=False) as z:
        x, y, ids = z["X"].astype(np.float32), z["Y"].astype(np.int64), z["IDS"]
    tracks, labels, patches = [], [], []
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        tracks.append(track_id(str(ids[a])))
        labels.append(int(y[a]))
        patches.append(x[a:b])
    if len(set(tracks)) != len(tracks):
        raise ValueError(f"{path}: a track's patches are not contiguous")
    return Taggrams(tuple(tracks), np.asarray(labels), tuple(patches))


def read_manifest(gtzan_dir: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of ``manifest.csv`` (track_id, genre, path, original_sample_rate, …)."""
    with open(Path(gtzan_dir) / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def port_taggrams(
    gtzan_dir: str | os.PathLike,
    cache: str | os.PathLike,
    *,
    predict: Any,
    policy: WindowPolicy | None = None,
    log: Any = print,
) -> dict[str, Taggrams]:
    """The port's taggrams of every shared clip, cached in ``cache`` (an ``.npz``).

    ``predict`` maps (n, 187, 96) patches to (n, 50) tag scores (Keras or LiteRT).
    Returns ``{"patches": every 1-s patch, "windows": the tagger's window plan}``,
    each a :class:`Taggrams` over all shared clips in manifest order.
    """
    cache = Path(cache)
    policy = policy or WindowPolicy()
    if cache.is_file():
        return _read_cache(cache)
    rows = read_manifest(gtzan_dir)
    out: dict[str, list[np.ndarray]] = {"patches": [], "windows": []}
    for i, row in enumerate(rows):
        path = Path(gtzan_dir) / row["path"]
        y = audio.load(path, sample_rate=DEFAULT_CONFIG.sample_rate)
        out["patches"].append(predict(track_patches(y)))
        segments, _, _, _ = read_track_windows(path, policy=policy)
        out["windows"].append(predict(window_patches(segments)))
        if (i + 1) % 25 == 0:
            log(f"  port taggrams: {i + 1}/{len(rows)} clips")
    tracks = np.asarray([r["track_id"] for r in rows])
    labels = np.asarray([GTZAN_GENRES.index(r["genre"]) for r in rows])
    arrays: dict[str, np.ndarray] = {"tracks": tracks, "labels": labels}
    for kind, per_track in out.items():
        arrays[f"{kind}_x"] = np.concatenate(per_track)
        arrays[f"{kind}_n"] = np.asarray([len(p) for p in per_track])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **arrays)
    return _read_cache(cache)


def _read_cache(cache: Path) -> dict[str, Taggrams]:
    with np.load(cache, allow_pickle=False) as z:
        tracks = tuple(str(t) for t in z["tracks"])
        labels = z["labels"].astype(np.int64)
        result = {}
        for kind in ("patches", "windows"):
            splits = np.cumsum(z[f"{kind}_n"])[:-1]
            per_track = tuple(np.split(z[f"{kind}_x"].astype(np.float32), splits))
            result[kind] = Taggrams(tracks, labels, per_track)
    return result


def compare(ours: Taggrams, published: dict[str, Taggrams]) -> dict[str, Any]:
    """Per-clip and overall agreement of our 1-s-patch taggrams with the published ones.

    Patches are aligned from the start and the shorter count is used. Per clip:
    MAE, mean per-patch Pearson correlation over the 50 tags, per-patch top-tag
    agreement. Overall figures average over clips (as the README's reference does)
    and over patches.
    """
    index = {t: (split, i) for split, tg in published.items() for i, t in enumerate(tg.tracks)}
    clips = []
    all_abs, all_top, all_corr = [], [], []
    for t, ours_x in zip(ours.tracks, ours.patches, strict=True):
        if t not in index:
            continue
        split, i = index[t]
        ref = published[split].patches[i]
        k = min(len(ref), len(ours_x))
        a, b = ours_x[:k], ref[:k]
        ac, bc = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        corr = (ac * bc).sum(1) / np.sqrt((ac**2).sum(1) * (bc**2).sum(1))
        top = a.argmax(1) == b.argmax(1)
        clips.append(
            {
                "track": t,
                "split": split,
                "n_ours": len(ours_x),
                "n_published": len(ref),
                "mae": float(np.abs(a - b).mean()),
                "max_abs": float(np.abs(a - b).max()),
                "corr": float(corr.mean()),
                "top_agreement": float(top.mean()),
            }
        )
        all_abs.append(np.abs(a - b).ravel())
        all_top.append(top)
        all_corr.append(corr)
    maes = np.array([c["mae"] for c in clips])
    tops = np.array([c["top_agreement"] for c in clips])
    worst_mae = sorted(clips, key=lambda c: -c["mae"])[:5]
    worst_top = sorted(clips, key=lambda c: c["top_agreement"])[:5]
    return {
        "n_clips": len(clips),
        "n_patches": int(sum(len(x) for x in all_top)),
        "count_mismatch": int(sum(c["n_ours"] != c["n_published"] for c in clips)),
        "mae_clip_mean": float(maes.mean()),
        "mae_patch_mean": float(np.concatenate(all_abs).mean()),
        "mae_worst_clip": float(maes.max()),
        "corr_patch_mean": float(np.concatenate(all_corr).mean()),
        "corr_worst_patch": float(np.concatenate(all_corr).min()),
        "top_agreement_clip_mean": float(tops.mean()),
        "top_agreement_patch_mean": float(np.concatenate(all_top).mean()),
        "top_agreement_worst_clip": float(tops.min()),
        "worst_mae": worst_mae,
        "worst_top_agreement": worst_top,
        "clips": clips,
    }
