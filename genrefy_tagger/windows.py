"""Which 3-s windows of a track to analyse.

A track of any length is judged from a bounded number of windows spread over
its body, so the cost per track does not grow with its length. Training uses
the same planner with ``max_windows=None`` (every whole window).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import audio
from .config import FeatureConfig
from .features import frame_signal, window_rms_db

#: Windows quieter than this (dBFS, absolute) are silence or near-silence and are not analysed.
SILENCE_DB = -50.0


@dataclass(frozen=True)
class WindowPolicy:
    max_windows: int | None = 10  # None: every whole window
    edge_fraction: float = 0.05  # share of a long track skipped at each end (intro/outro, fades)
    max_edge_seconds: float = 15.0
    silence_db: float = SILENCE_DB


def plan_starts(duration: float, *, window_seconds: float, policy: WindowPolicy) -> list[float]:
    """Start times (seconds) of the windows to analyse in a track of ``duration`` seconds.

    Short tracks (all their whole windows fit in the budget) are cut back to back
    from 0 s, exactly as a training clip is; longer ones get ``max_windows``
    evenly spread windows over the track minus its edges.
    """
    n_all = int(duration // window_seconds) if duration > 0 else 0
    if policy.max_windows is None or n_all <= policy.max_windows:
        return [i * window_seconds for i in range(n_all)]
    edge = min(duration * policy.edge_fraction, policy.max_edge_seconds)
    first, last = edge, duration - edge - window_seconds
    if last <= first:
        first, last = 0.0, duration - window_seconds
    return [float(t) for t in np.linspace(first, last, policy.max_windows)]


@dataclass(frozen=True)
class Windows:
    samples: np.ndarray  # (n, window_samples) float32, audible windows only
    starts: np.ndarray  # (n,) seconds
    duration: float  # of the whole track, seconds
    n_silent: int  # windows dropped as silent


def read_windows(
    path: str | os.PathLike, *, config: FeatureConfig, policy: WindowPolicy
) -> Windows:
    """Decode the planned windows of a file and drop the silent ones.

    Files whose planned windows cover them anyway are decoded in one pass and
    framed by :func:`~genrefy_tagger.features.frame_signal` (the training path);
    longer ones are decoded window by window, seeking in between.
    """
    info = audio.probe(path)
    starts = plan_starts(info.duration, window_seconds=config.window_seconds, policy=policy)
    back_to_back = np.allclose(starts, np.arange(len(starts)) * config.window_seconds)
    if back_to_back:
        y = audio.load(path, sample_rate=config.sample_rate, info=info)
        samples = frame_signal(y, config=config)
        duration = len(y) / config.sample_rate  # decoded, not the probe's estimate
        starts = [i * config.window_seconds for i in range(len(samples))]
    else:
        samples = audio.load_segments(
            path, starts, seconds=config.window_seconds, sample_rate=config.sample_rate, info=info
        )
        duration = info.duration
    starts_arr = np.asarray(starts, dtype=np.float64)
    audible = window_rms_db(samples) > policy.silence_db if len(samples) else np.zeros(0, bool)
    return Windows(samples[audible], starts_arr[audible], duration, int((~audible).sum()))
