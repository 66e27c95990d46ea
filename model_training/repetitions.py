"""Finding GTZAN clips that repeat one recording, so no recording sits on two sides of a split.

GTZAN holds exact and near-exact repetitions (Sturm 2013): the same excerpt of the same
recording under two track ids, sometimes re-encoded or shifted by a fraction of a
second. The fault-filtered lists leave such clips out, but a run that also trains on the
clips in no list (``fault-filtered+unlisted``, ``kfold``) would otherwise train on a copy
of a clip it is scored on. On the shared folder, pop.00067 (in no list) is pop.00071
(ff-test), pop.00087 is pop.00090 (ff-test), and 13 unlisted jazz clips repeat ff-train ones.

Two stages, both over "spectral change" prints (the frame-to-frame change of a log-mel
spectrogram less each frame's mean over bands, standardised per band, so level, static EQ
and a beat that lifts every band at once do not matter):

1. every pair of clips, coarse prints (24 bands, 46 ms hops), correlated at every lag
   with at least ``min_overlap`` seconds in common: candidates above ``coarse_threshold``;
2. each candidate at full resolution (96 bands, 12 ms hops) around its best lag:
   a repetition when the correlation reaches ``threshold``.

On the 496 shared clips (32 s on 2 cores) stage 1 keeps 116 pairs; the 22 repetitions
among them score 0.84-1.00 in stage 2, the other 94 at most 0.39.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .dataset import Clip

SR = 11025
#: Fine prints: 96 bands, hop 128 (11.6 ms). Coarse prints: 24 bands from every 4th
#: frame of the same STFT, i.e. hop 512 (46 ms).
N_FFT, FINE_HOP, FINE_MELS, COARSE_STEP, COARSE_MELS = 1024, 128, 96, 4, 24
COARSE_HOP = FINE_HOP * COARSE_STEP
#: At most this much of each clip is compared (memory grows with the longest clip).
MAX_SECONDS = 60.0
#: Which copy of a recording stays: the one in the most valuable role.
ROLE_RANK = {"test": 0, "valid": 1, "train": 2, "none": 3, None: 4}


@dataclass(frozen=True)
class Repetition:
    """Two track ids that hold the same recording, and how well they match."""

    a: str
    b: str
    score: float  # stage-2 correlation, 1.0 = identical
    lag_s: float  # b's audio runs this many seconds after a's


def prints(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coarse, fine) spectral-change prints of a clip, both from one STFT.

    y: (n_samples,) mono at :data:`SR`. Returns (24, ~n/512) and (96, ~n/128) float32.
    """
    import librosa

    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=FINE_HOP)) ** 2
    coarse, fine = (
        librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=n, fmax=5000) @ frames
        for n, frames in ((COARSE_MELS, power[:, ::COARSE_STEP]), (FINE_MELS, power))
    )
    return spectral_change(coarse), spectral_change(fine)


def spectral_change(mel: np.ndarray) -> np.ndarray:
    """Frame-to-frame change of a log-mel spectrogram, standardised per band.

    mel: (n_mels, n_frames) mel power. Returns (n_mels, n_frames - 1) float32.
    """
    log_mel = np.log(mel + 1e-6)
    # Without each frame's mean over bands, a drum hit that lifts every band at once does
    # not make two songs on the same beat look alike; what stays is which bands move.
    change = np.diff(log_mel - log_mel.mean(axis=0, keepdims=True), axis=1)
    change -= change.mean(axis=1, keepdims=True)
    change /= change.std(axis=1, keepdims=True) + 1e-6
    return change.astype(np.float32)


def coarse_candidates(
    prints: Mapping[str, np.ndarray],
    *,
    hop: int = COARSE_HOP,
    min_overlap: float = 10.0,
    coarse_threshold: float = 0.1,
) -> list[tuple[str, str, float]]:
    """Pairs whose coarse prints correlate above ``coarse_threshold`` at some lag.

    prints: track id → (n_bands, n_frames) coarse print. Returns (a, b, lag_s) with
    a before b in the mapping's order.
    """
    ids = list(prints)
    if len(ids) < 2:
        return []
    size = 1 << int(np.ceil(np.log2(2 * max(p.shape[1] for p in prints.values()))))
    spectra = np.stack([np.fft.rfft(prints[t], n=size, axis=1) for t in ids]).astype(np.complex64)
    lengths = np.array([prints[t].shape[1] for t in ids])
    lags = np.arange(size)
    lags = np.where(lags < size // 2, lags, lags - size)
    need = min_overlap * SR / hop
    found = []
    for i in range(len(ids) - 1):
        # Sum over bands of the cross-correlations of clip i with every later clip.
        xc = np.fft.irfft((np.conj(spectra[i])[None] * spectra[i + 1 :]).sum(1), n=size, axis=1)
        overlap = np.minimum(lengths[i], lengths[i + 1 :, None] - lags) - np.maximum(0, -lags)
        score = np.where(overlap >= need, xc / (np.maximum(overlap, 1) * spectra.shape[1]), 0.0)
        best = score.argmax(axis=1)
        for j in np.flatnonzero(score[np.arange(len(best)), best] > coarse_threshold):
            found.append((ids[i], ids[i + 1 + j], float(lags[best[j]] * hop / SR)))
    return found


def fine_score(a: np.ndarray, b: np.ndarray, *, lag_frames: int, search: int = 6) -> float:
    """Best correlation of two fine prints within ``search`` frames of ``lag_frames``.

    a, b: (n_bands, n_frames). The lag is how many frames b's audio runs after a's.
    """
    best = -1.0
    for lag in range(lag_frames - search, lag_frames + search + 1):
        a0, b0 = max(0, -lag), max(0, lag)
        n = min(a.shape[1] - a0, b.shape[1] - b0)
        if n < 200:
            continue
        x = a[:, a0 : a0 + n].ravel().astype(np.float32)
        y = b[:, b0 : b0 + n].ravel().astype(np.float32)
        best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best


def find_repetitions(
    ids: Sequence[str],
    load: Callable[[str], np.ndarray | None],
    *,
    threshold: float = 0.8,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[Repetition]:
    """Every pair of ``ids`` that repeats one recording.

    ``load(track_id)`` gives the clip as mono float32 at :data:`SR`, or None when it
    cannot be read (it is then left out). Each clip is read once.
    """
    coarse, fine = {}, {}
    for t in progress(ids):
        y = load(t)
        if y is None:
            continue
        coarse[t], fine_print = prints(y)
        fine[t] = fine_print.astype(np.float16)  # 0.5 MB a clip
    found = []
    for a, b, lag_s in coarse_candidates(coarse):
        score = fine_score(fine[a], fine[b], lag_frames=int(round(lag_s * SR / FINE_HOP)))
        if score >= threshold:
            found.append(Repetition(a, b, round(score, 3), round(lag_s, 2)))
    return found


def redundant(repetitions: Iterable[Repetition], roles: Mapping[str, str | None]) -> dict[str, str]:
    """Which clips to leave out so that each recording is heard once: id → the id kept.

    Repetitions are grouped transitively; each group keeps the clip in the most valuable
    role (test, then valid, then train, then none; the lowest id among equals), so
    evaluation sets stay as published and no training clip copies an evaluation clip.
    """
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    for r in repetitions:
        parent[root(r.a)] = root(r.b)
    groups: dict[str, list[str]] = {}
    for t in parent:
        groups.setdefault(root(t), []).append(t)
    left_out = {}
    for members in groups.values():
        keep = min(members, key=lambda t: (ROLE_RANK.get(roles.get(t), 4), t))
        left_out.update({t: keep for t in members if t != keep})
    return left_out


#: Bump when the prints or thresholds change, so cached answers are not reused.
VERSION = 3


def repetitions_of(
    clips: Sequence[Clip], *, cache_dir: str | os.PathLike, progress: bool = True
) -> list[Repetition]:
    """:func:`find_repetitions` over ``clips``' audio, cached under ``cache_dir``.

    The cache key is every clip's id, size and modification time: the answer is
    recomputed when any clip changes, is added or is removed. Clips that cannot be
    decoded are left out of the comparison (the feature extraction reports them).
    """
    from genrefy_tagger.reading.audio import AudioError, load

    stamps = []
    for c in sorted(clips, key=lambda c: c.track_id):
        st = c.path.stat()
        stamps.append([c.track_id, st.st_size, st.st_mtime_ns])
    key = hashlib.sha256(json.dumps([VERSION, stamps]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"repetitions-{key}.json"
    if path.is_file():
        return [Repetition(**r) for r in json.loads(path.read_text())]
    paths = {c.track_id: c.path for c in clips}

    def read(track_id: str) -> np.ndarray | None:
        try:
            # Clips are 30 s; a longer file in a user's folder is compared on its start.
            return load(paths[track_id], sample_rate=SR, duration=MAX_SECONDS)
        except AudioError:
            return None

    bar = _bar("comparing clips for repeated recordings", progress)
    found = find_repetitions(sorted(paths), read, progress=bar)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in found], indent=0))
    tmp.replace(path)
    return found


def _bar(desc: str, enabled: bool) -> Callable[[Iterable], Iterable]:
    from tqdm.auto import tqdm

    return lambda items: tqdm(items, desc=desc, unit="clip", disable=not enabled)
