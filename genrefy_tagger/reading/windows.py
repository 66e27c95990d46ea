"""Which 3-s windows of a track to analyse, and decoding them — for every model kind.

A track of any length is judged from a bounded number of windows spread over
its body, so the cost per track does not grow with its length. Training uses
the same planner with ``max_windows=None`` (every whole window).

What a model needs is declared by its bundle as a :class:`WindowSpec` (rate,
window length, FFT context around each window, target level); this module
plans, decodes, gates and levels the windows once for any kind of model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import audio, loudness
from .features import window_rms_db

#: Windows quieter than this (dBFS, absolute) are silence or near-silence and are not analysed;
#: so are windows far below the track's own median (``loudness.audible``).
SILENCE_DB = -60.0
#: Tracks up to this long are decoded whole and their silent edges cut before planning;
#: longer ones skip at least 4.5 s at each end anyway (``edge_fraction``).
TRIM_MAX_SECONDS = 90.0


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


def plan_trimmed(
    y: np.ndarray, *, sample_rate: int, window_seconds: float, policy: WindowPolicy
) -> tuple[np.ndarray, list[float], int, int]:
    """Plan the windows of a decoded short track after cutting its silent edges.

    Returns
    -------
    body : np.ndarray, the signal from its first audible sample on, with one window of
        zeros appended (the plan may use ``loudness.TRIM_SLACK_SECONDS`` past the end)
    starts : window starts in seconds from the start of ``body``
    offset : samples cut at the start
    n_edge : whole windows of silence cut at both edges (reported as silent)
    """
    win = int(round(window_seconds * sample_rate))
    offset, stop = loudness.trim_bounds(y, sample_rate)
    n_edge = int(offset // win + (len(y) - stop) // win)
    length = (stop - offset) / sample_rate + loudness.TRIM_SLACK_SECONDS
    starts = plan_starts(length, window_seconds=window_seconds, policy=policy)
    return np.pad(y[offset:], (0, win)), starts, offset, n_edge


class WindowSpec(Protocol):
    """What a model kind hears: declared by its bundle's config (e.g. ``FeatureConfig``)."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def window_seconds(self) -> float: ...
    @property
    def window_samples(self) -> int: ...
    @property
    def context_samples(self) -> int:
        """Samples decoded before each window's start (an FFT's half frame, or 0)."""

    @property
    def segment_samples(self) -> int:
        """Samples decoded per window, from ``start - context_samples`` on."""

    @property
    def loudness_db(self) -> float | None:
        """Level the audible windows are brought to (None: left as decoded)."""


@dataclass(frozen=True)
class Windows:
    samples: np.ndarray  # (n, spec.segment_samples) float32, audible windows only
    starts: np.ndarray  # (n,) seconds
    duration: float  # of the whole track, seconds
    n_silent: int  # windows dropped as silent


def read_windows(path: str | os.PathLike, *, config: WindowSpec, policy: WindowPolicy) -> Windows:
    """Decode the planned windows of a file, drop the silent ones, normalise the level.

    Tracks up to ``TRIM_MAX_SECONDS`` are decoded in one pass, their silent edges cut
    (silent whole windows cut count as ``n_silent``) and the plan laid over the rest;
    longer ones are decoded window by window, seeking in between. Each segment starts
    ``config.context_samples`` before its window (zeros outside the track), so that
    frame ``j`` of a centred STFT sits where it would in the whole-track spectrogram.
    The level is measured on the windows proper and the audible ones are scaled to
    ``config.loudness_db`` (:mod:`~genrefy_tagger.reading.loudness`).
    """
    info = audio.probe(path)
    sr, win = config.sample_rate, config.window_samples
    lead, length = config.context_samples, config.segment_samples
    n_edge, offset = 0, 0
    if info.duration <= TRIM_MAX_SECONDS:
        y = audio.load(path, sample_rate=sr, info=info)
        duration = len(y) / sr  # decoded, not the probe's estimate
        body, starts, offset, n_edge = plan_trimmed(
            y, sample_rate=sr, window_seconds=config.window_seconds, policy=policy
        )
        padded = np.pad(body, (lead, length))
        at = [int(round(s * sr)) for s in starts]
        segments = (
            np.stack([padded[a : a + length] for a in at])
            if at
            else np.zeros((0, length), np.float32)
        )
    else:
        starts = plan_starts(info.duration, window_seconds=config.window_seconds, policy=policy)
        segments = audio.load_segments(
            path, [s - lead / sr for s in starts], seconds=length / sr, sample_rate=sr, info=info
        )
        duration = info.duration
    starts_arr = np.asarray(starts, dtype=np.float64) + offset / sr
    levels = window_rms_db(segments[:, lead : lead + win]) if len(segments) else np.zeros(0)
    keep = loudness.audible(levels, floor_db=policy.silence_db)
    scale = loudness.gain(levels, keep, config.loudness_db)
    kept = (segments[keep] * np.float32(scale)).astype(np.float32, copy=False)
    return Windows(kept, starts_arr[keep], duration, int((~keep).sum()) + n_edge)
