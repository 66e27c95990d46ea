"""Level invariance: which audio counts as silence, and at what level a track is heard.

One place for the rules both models apply, in tagging and in training alike:

* :func:`trim_bounds` — leading and trailing silence is cut before windows are
  planned, so a clip padded with silence is planned like the clip itself. The
  threshold is relative to the track's own loud frames, so it does not move with
  the playback level.
* :func:`audible` — which analysed windows are heard: above an absolute floor
  (digital silence, hiss) *and* not far below the track's median window level.
* :func:`gain` — the factor that brings a track's median audible window level to
  the bundle's target (the training set's median), so a track's level cannot
  decide its genre. Audio stays float: a gain above 1 never clips, and clipped
  input is handled by training on clipped copies (``model_training``'s augmentation).
"""

from __future__ import annotations

import numpy as np

#: Level every analysed track is brought to, dBFS: the median over the 367 shared GTZAN clips
#: outside the ff-test split of each clip's median audible 3-s window level (-17.8 at both
#: 16 and 22.05 kHz; 5th-95th percentile of the clips: -33.0 to -11.3).
TARGET_DB = -17.8
#: Frames used to find the edges of a track's audible part, seconds.
TRIM_FRAME_SECONDS = 0.1
#: A trimmed track counts this much longer when windows are planned, so that cutting the
#: first sample or the last partial frame never costs a whole window.
TRIM_SLACK_SECONDS = 0.1
#: An edge frame this far below the track's loud frames (95th percentile) is silence.
TRIM_RELATIVE_DB = 50.0
#: A window this far below the track's median audible window is silence (e.g. a pause).
RELATIVE_GATE_DB = 30.0


def rms_db(x: np.ndarray) -> np.ndarray:
    """``20 log10(rms)`` over the last axis; digital silence gives -inf."""
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=-1))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms)


def trim_bounds(y: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """Sample range ``[start, stop)`` of a mono signal without its silent edges.

    Returns ``(0, 0)`` for a signal with nothing audible. The threshold is
    ``TRIM_RELATIVE_DB`` below the 95th percentile of 0.1-s frame levels, so scaling
    the signal does not move the bounds; planning adds ``TRIM_SLACK_SECONDS`` so that
    cutting a near-silent first or last sample never costs a whole window.
    """
    frame = max(1, int(round(TRIM_FRAME_SECONDS * sample_rate)))
    y = np.asarray(y, dtype=np.float32)
    n = -(-len(y) // frame)  # the last, partial frame counts (zero-padded)
    if n == 0:
        return 0, 0
    levels = rms_db(np.pad(y, (0, n * frame - len(y))).reshape(n, frame))
    finite = levels[np.isfinite(levels)]
    if not len(finite):
        return 0, 0
    threshold = np.percentile(finite, 95) - TRIM_RELATIVE_DB
    loud = np.flatnonzero(levels > threshold)
    if not len(loud):
        return 0, 0
    # Refine both ends to the sample inside the edge frames, so a clip and the same clip
    # between stretches of silence line up exactly.
    amp = 10.0 ** (threshold / 20.0)
    first, last = int(loud[0]) * frame, min(len(y), (int(loud[-1]) + 1) * frame)
    head = np.flatnonzero(np.abs(y[first : first + frame]) > amp)
    tail = np.flatnonzero(np.abs(y[max(first, last - frame) : last]) > amp)
    start = first + (int(head[0]) if len(head) else 0)
    stop = max(first, last - frame) + (int(tail[-1]) + 1 if len(tail) else last - first)
    return start, max(start, stop)


def audible(window_db: np.ndarray, *, floor_db: float) -> np.ndarray:
    """Boolean mask of windows that are heard.

    A window is silent below ``floor_db`` (absolute, dBFS) or more than
    ``RELATIVE_GATE_DB`` below the median of the windows above the floor; the
    relative part keeps the choice the same whatever the playback level.
    """
    window_db = np.asarray(window_db, dtype=np.float64)
    mask = window_db > floor_db
    if mask.any():
        mask &= window_db > np.median(window_db[mask]) - RELATIVE_GATE_DB
    return mask


def gain(window_db: np.ndarray, mask: np.ndarray, target_db: float | None) -> float:
    """Linear factor that brings the median level of the ``mask`` windows to ``target_db``.

    ``target_db=None`` (a bundle trained without normalisation) or no audible
    window gives 1.0.
    """
    window_db = np.asarray(window_db, dtype=np.float64)
    if target_db is None or not np.any(mask):
        return 1.0
    return float(10.0 ** ((target_db - float(np.median(window_db[mask]))) / 20.0))


def normalise_clip(
    y: np.ndarray,
    sample_rate: int,
    *,
    window_seconds: float,
    target_db: float | None,
    floor_db: float,
) -> np.ndarray:
    """A whole clip as training sees it: silent edges cut, level brought to ``target_db``.

    The level is measured exactly as tagging measures it — the median of the audible
    back-to-back windows — so a training clip and the same file tagged are heard at
    the same level.
    """
    start, stop = trim_bounds(y, sample_rate)
    y = np.asarray(y[start:stop], dtype=np.float32)
    win = int(round(window_seconds * sample_rate))
    n = len(y) // win
    if n == 0:
        return y
    levels = rms_db(y[: n * win].reshape(n, win))
    return (y * gain(levels, audible(levels, floor_db=floor_db), target_db)).astype(np.float32)
