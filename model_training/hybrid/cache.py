"""Window features of every clip, computed once and kept in ``.cache/features``.

One ``.npz`` per (clip, feature configuration, variant)::

    .cache/features/<config hash>/<variant>/<genre>/<track id>.npz
        features  float32 (n_windows, n_frames, n_features)
        source    int64 (2,)  size and mtime (ns) of the audio file it came from

``variant`` is ``orig`` (the clip as the tagger would see it) or ``aug<k>-v<n>``
(augmented copy ``k`` made with recipe version ``n``). A cached file whose source
changed is recomputed. No pickle: ``np.load(..., allow_pickle=False)``.

Unaugmented features come from :func:`genrefy_tagger.reading.windows.read_windows` +
:func:`~genrefy_tagger.reading.features.window_features` — the tagger's own path — so the
model is trained on exactly what it is later shown.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from genrefy_tagger.reading.config import FeatureConfig

from ..dataset import Clip
from .augment import AUGMENT_VERSION, augmented_features, params_for

DEFAULT_CACHE = Path(".cache/features")
ORIGINAL = "orig"


def config_hash(config: FeatureConfig) -> str:
    """12 hex digits naming a feature configuration."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def variant_names(n_augmented: int) -> list[str]:
    """``["orig", "aug0-v1", "aug1-v1", ...]``."""
    return [ORIGINAL] + [f"aug{k}-v{AUGMENT_VERSION}" for k in range(n_augmented)]


def cache_path(clip: Clip, variant: str, *, config: FeatureConfig, cache_dir: Path) -> Path:
    return Path(cache_dir) / config_hash(config) / variant / clip.genre / f"{clip.track_id}.npz"


def tagging_features(path: str | os.PathLike, *, config: FeatureConfig) -> np.ndarray:
    """Features of every whole audible window of a file, as the tagger computes them.

    Returns
    -------
    features : np.ndarray [shape=(n_windows, config.n_frames, config.n_features)], float32
    """
    from genrefy_tagger.reading.features import window_features
    from genrefy_tagger.reading.windows import WindowPolicy, read_windows

    windows = read_windows(path, config=config, policy=WindowPolicy(max_windows=None))
    return window_features(windows.samples, config=config)


def compute(clip: Clip, variant: str, *, config: FeatureConfig) -> np.ndarray:
    """Features of one variant of one clip (no cache involved); shape as above."""
    if variant == ORIGINAL:
        return tagging_features(clip.path, config=config)
    from genrefy_tagger.reading.audio import load

    copy = int(variant[3:].split("-")[0])
    y = load(clip.path, sample_rate=config.sample_rate)
    return augmented_features(y, params_for(clip.track_id, copy), config=config)


def _source_stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


def load_cached(clip: Clip, variant: str, *, config: FeatureConfig, cache_dir: Path):
    """The cached features, or None when absent or stale."""
    path = cache_path(clip, variant, config=config, cache_dir=cache_dir)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if not np.array_equal(data["source"], _source_stamp(clip.path)):
                return None
            return data["features"]
    except (OSError, ValueError, KeyError):
        return None  # a half-written file from an interrupted run: recompute


def _work(task: tuple[Clip, str, FeatureConfig, str]) -> tuple[str, str, str | None]:
    """Worker: compute and store one (clip, variant); returns an error string on failure."""
    clip, variant, config, cache_dir = task
    try:
        feats = compute(clip, variant, config=config)
    except Exception as exc:  # noqa: BLE001 - one bad clip is reported, not fatal
        return clip.track_id, variant, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    if len(feats) == 0:
        return clip.track_id, variant, "no audible 3-s window"
    path = cache_path(clip, variant, config=config, cache_dir=Path(cache_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, features=feats, source=_source_stamp(clip.path))
    os.replace(tmp, path)  # atomic: readers never see half a file
    return clip.track_id, variant, None


#: One thread per worker process: ``jobs`` processes already fill ``jobs`` cores.
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class FeatureSet:
    """Features per (track id, variant) plus what could not be computed."""

    features: dict[tuple[str, str], np.ndarray]
    failures: dict[tuple[str, str], str]
    computed: int  # how many were extracted now (the rest came from the cache)


def extract(
    clips: Sequence[Clip],
    variants: Sequence[str] | dict[str, Sequence[str]],
    *,
    config: FeatureConfig | None = None,
    cache_dir: str | os.PathLike = DEFAULT_CACHE,
    jobs: int = 2,
    progress: bool = True,
) -> FeatureSet:
    """Make sure every (clip, variant) is cached, then load them all.

    Parameters
    ----------
    variants : the same variants for every clip, or ``{track_id: variants}`` (training
        clips get augmented copies, the others only ``orig``).
    jobs : worker processes (one per core).

    Returns a :class:`FeatureSet`; a clip that fails is in ``failures`` with the reason.
    """
    from tqdm.auto import tqdm

    config = config or FeatureConfig()
    cache_dir = Path(cache_dir)
    wanted = [
        (clip, v)
        for clip in clips
        for v in (
            variants.get(clip.track_id, [ORIGINAL]) if isinstance(variants, dict) else variants
        )
    ]
    features: dict[tuple[str, str], np.ndarray] = {}
    todo = []
    for clip, v in wanted:
        cached = load_cached(clip, v, config=config, cache_dir=cache_dir)
        if cached is None:
            todo.append((clip, v, config, str(cache_dir)))
        else:
            features[clip.track_id, v] = cached
    failures: dict[tuple[str, str], str] = {}
    if todo:
        bar = tqdm(total=len(todo), desc="features", unit="clip", disable=not progress)
        if jobs > 1 and len(todo) > 1:
            # Spawned children read the thread limits from the environment at import time.
            saved = {k: os.environ.get(k) for k in _ONE_THREAD}
            os.environ.update(_ONE_THREAD)
            try:
                with get_context("spawn").Pool(jobs) as pool:
                    for tid, v, err in pool.imap_unordered(_work, todo, chunksize=2):
                        bar.update()
                        if err:
                            failures[tid, v] = err
            finally:
                for k, old in saved.items():
                    if old is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = old
        else:
            for task in todo:
                tid, v, err = _work(task)
                bar.update()
                if err:
                    failures[tid, v] = err
        bar.close()
        by_id = {c.track_id: c for c in clips}
        for clip, v, _, _ in todo:
            if (clip.track_id, v) not in failures:
                feats = load_cached(by_id[clip.track_id], v, config=config, cache_dir=cache_dir)
                if feats is None:
                    failures[clip.track_id, v] = "cache entry vanished"
                else:
                    features[clip.track_id, v] = feats
    return FeatureSet(features, failures, len(todo))
