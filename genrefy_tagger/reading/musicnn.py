"""MSD_musicnn's input: configuration, log-mel patches and the head's window groups.

The pretrained MSD_musicnn tagger (Pons & Serra, musicnn 0.1.0, ISC licence; see
``models/musicnn/LICENSE-musicnn.txt``) maps a 3-s log-mel patch to 50 Last.fm tag
scores. This module reproduces its input pipeline so that the tagger never needs
the ``musicnn`` package (nor TensorFlow) at run time:

* :class:`MusicnnConfig` — the pipeline's settings; it is also the bundle's
  :class:`~genrefy_tagger.reading.windows.WindowSpec` (16 kHz, 3-s windows with FFT context);
* :func:`log_mel` / :func:`track_patches` / :func:`window_patches` — the patches;
* :func:`head_groups` — time-ordered taggrams → the genre head's fixed-length input.

The network itself is in :mod:`model_training.musicnn.network` (Keras, training side);
tagging runs its LiteRT export through :mod:`genrefy_tagger.listening.kinds.musicnn`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .loudness import TARGET_DB
from .windows import WindowPolicy, read_windows

BUNDLE_KIND = "musicnn"


@dataclass(frozen=True)
class MusicnnConfig:
    """musicnn's input pipeline (``musicnn/configuration.py`` and ``extractor.batch_data``).

    A patch is ``patch_frames`` frames of a centred STFT (Hann, ``n_fft``, ``hop_length``)
    of 16-kHz mono audio, through librosa's Slaney mel filterbank (power 2), rounded to
    float16 as musicnn does, then ``log10(10000 * x + 1)`` computed in float32.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    patch_frames: int = 187  # librosa.time_to_frames(3 s) + 1
    # musicnn's input_overlap=1 s → librosa.time_to_frames(1 s) = 61 frames (0.976 s), not 62.5.
    patch_step_frames: int = 61
    log_rule: str = "log10(10000 * float32(float16(mel_power)) + 1)"
    window_seconds: float = 3.0  # what the tagger's window plan cuts
    loudness_db: float | None = TARGET_DB  # level the audible windows are brought to

    @property
    def window_samples(self) -> int:
        """Samples of one 3-s tagging window (its start is a patch's first frame centre)."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def context_samples(self) -> int:
        """Samples decoded before a window: half an FFT frame, so frame 0 is centred on it."""
        return self.n_fft // 2

    @property
    def segment_samples(self) -> int:
        """Samples decoded per window (``WindowSpec``): exactly what one patch reads."""
        return self.patch_samples

    @property
    def patch_samples(self) -> int:
        """Samples one patch reads without padding: 186 hops plus one FFT frame (48,128)."""
        return (self.patch_frames - 1) * self.hop_length + self.n_fft

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CONFIG = MusicnnConfig()


# --------------------------------------------------------------------------- patches


@lru_cache(maxsize=4)
def _mel_basis(config: MusicnnConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32, librosa's default (Slaney) filterbank, as musicnn."""
    import librosa

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)


@lru_cache(maxsize=4)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (what librosa.stft's 'hann' is)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def _log_mel_frames(
    frames: np.ndarray, config: MusicnnConfig, mel_basis: np.ndarray | None = None
) -> np.ndarray:
    """(..., n_frames, n_fft) audio frames → (..., n_frames, n_mels) musicnn log-mel."""
    spectrum = np.fft.rfft(frames * _hann(config.n_fft), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ (_mel_basis(config) if mel_basis is None else mel_basis).T
    # musicnn casts to float16 before the log; the product is float32 (NumPy 1 promotion).
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(10000.0 * mel + 1.0).astype(np.float32)


def _frame(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(n,) → (1 + (n - n_fft) // hop, n_fft) strided view of overlapping frames."""
    n = 1 + (y.shape[-1] - n_fft) // hop
    return np.lib.stride_tricks.as_strided(
        y,
        shape=(*y.shape[:-1], n, n_fft),
        strides=(*y.strides[:-1], hop * y.strides[-1], y.strides[-1]),
    )


def log_mel(y: np.ndarray, config: MusicnnConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Whole-signal log-mel spectrogram exactly as musicnn's ``batch_data`` computes it.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono float32 at ``config.sample_rate``

    Returns
    -------
    spec : np.ndarray [shape=(1 + n // hop_length, n_mels)], float32
        Centred frames; the signal is zero-padded by ``n_fft // 2`` at both ends
        (librosa ≥ 0.10's ``pad_mode="constant"``).
    """
    pad = config.n_fft // 2
    padded = np.pad(np.asarray(y, dtype=np.float32), (pad, pad))
    return _log_mel_frames(_frame(padded, config.n_fft, config.hop_length), config)


def track_patches(y: np.ndarray, config: MusicnnConfig = DEFAULT_CONFIG) -> np.ndarray:
    """All patches of a track, one every ``patch_step_frames`` (musicnn's ``input_overlap=1``).

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, patch_frames, n_mels)], float32
        Patch ``k`` starts at frame ``k * patch_step_frames``; a signal shorter than
        one patch gives ``n_patches == 0``.
    """
    spec = log_mel(y, config)
    starts = range(0, spec.shape[0] - config.patch_frames + 1, config.patch_step_frames)
    out = np.zeros((len(starts), config.patch_frames, config.n_mels), dtype=np.float32)
    for i, s in enumerate(starts):
        out[i] = spec[s : s + config.patch_frames]
    return out


def window_patches(
    segments: np.ndarray,
    config: MusicnnConfig = DEFAULT_CONFIG,
    *,
    mel_basis: np.ndarray | None = None,
) -> np.ndarray:
    """Patches of decoded windows that carry ``n_fft // 2`` samples of context each side.

    Parameters
    ----------
    segments : np.ndarray [shape=(n, config.patch_samples)]
        Audio from ``start - n_fft / 2`` samples to ``start + 3 s + n_fft / 2 - hop``;
        zeros where that runs outside the track. Frame ``j`` is then centred on
        ``start + j * hop``, exactly as in the whole-track spectrogram.
    mel_basis : np.ndarray [shape=(n_mels, n_fft // 2 + 1)], optional
        librosa's filterbank for ``config`` as a bundle ships it (``mel_basis.npy``);
        None computes it, importing librosa (~1 s, once per process).

    Returns
    -------
    patches : np.ndarray [shape=(n, patch_frames, n_mels)], float32
    """
    segments = np.ascontiguousarray(segments, dtype=np.float32)
    if segments.ndim != 2 or segments.shape[1] != config.patch_samples:
        raise ValueError(f"expected segments (n, {config.patch_samples}), got {segments.shape}")
    return _log_mel_frames(_frame(segments, config.n_fft, config.hop_length), config, mel_basis)


def read_track_windows(
    path: str | os.PathLike,
    *,
    policy: WindowPolicy,
    config: MusicnnConfig = DEFAULT_CONFIG,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """:func:`genrefy_tagger.reading.windows.read_windows` with musicnn's spec, as a tuple.

    Returns
    -------
    segments : np.ndarray [shape=(n_audible, config.patch_samples)], float32
        Input of :func:`window_patches`.
    starts : np.ndarray [shape=(n_audible,)], window starts in seconds
    duration : float, seconds
    n_silent : int, planned windows dropped because quieter than ``policy.silence_db``
    """
    w = read_windows(path, config=config, policy=policy)
    return w.samples, w.starts, w.duration, w.n_silent


def stretch_indices(n: int, length: int) -> np.ndarray:
    """Time-ordered indices that stretch ``n`` items to ``length`` by repeating some.

    ``n = 4, length = 10`` → ``[0 0 0 1 1 2 2 2 3 3]``-like: every item kept, in order,
    each repeated about equally. Requires ``1 <= n <= length``.
    """
    if not 1 <= n <= length:
        raise ValueError(f"cannot stretch {n} items to {length}")
    return np.floor(np.arange(length) * n / length).astype(np.int64)


def head_groups(taggrams: np.ndarray, seq_len: int) -> np.ndarray:
    """Time-ordered windows → fixed-length head inputs.

    Parameters
    ----------
    taggrams : np.ndarray [shape=(n, n_tags)], n >= 1, in time order

    Returns
    -------
    groups : np.ndarray [shape=(ceil(n / seq_len), seq_len, n_tags)], float32
        ``n <= seq_len``: one group, stretched by :func:`stretch_indices`. Otherwise
        window ``i`` goes to group ``i % n_groups``, so every group spans the whole
        track in time order (as the tagger's spread windows do); each group is then
        stretched to ``seq_len``.
    """
    taggrams = np.asarray(taggrams, dtype=np.float32)
    n = len(taggrams)
    n_groups = -(-n // seq_len)
    out = []
    for g in range(n_groups):
        member = taggrams[g::n_groups]
        out.append(member[stretch_indices(len(member), seq_len)])
    return np.stack(out)
