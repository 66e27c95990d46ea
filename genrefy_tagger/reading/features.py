"""Window features: log-mel, MFCC, chroma and spectral contrast from one STFT.

Training and tagging both call :func:`window_features`; nothing else in the
project computes features.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import FeatureConfig


def frame_signal(
    y: np.ndarray, *, config: FeatureConfig, hop_seconds: float | None = None
) -> np.ndarray:
    """Cut a mono signal into whole windows.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``config.sample_rate``.
    hop_seconds : float, optional
        Distance between window starts; defaults to the window length (no overlap).

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, config.window_samples)], float32
        A trailing partial window is dropped; a signal shorter than one window
        gives ``n_windows == 0``.
    """
    length = config.window_samples
    hop = int(round((hop_seconds or config.window_seconds) * config.sample_rate))
    if y.shape[-1] < length:
        return np.zeros((0, length), dtype=np.float32)
    n = 1 + (y.shape[-1] - length) // hop
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    return np.ascontiguousarray(y[idx], dtype=np.float32)


@lru_cache(maxsize=8)
def _filterbanks(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mel and chroma filterbanks restricted to the STFT bins at or below ``fmax``."""
    import librosa

    freqs = librosa.fft_frequencies(sr=config.sample_rate, n_fft=config.n_fft)
    keep = freqs <= config.fmax
    mel = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmax=config.fmax
    )[:, keep]
    chroma = librosa.filters.chroma(
        sr=config.sample_rate, n_fft=config.n_fft, n_chroma=config.n_chroma, tuning=0.0
    )[:, keep]
    return mel.astype(np.float32), chroma.astype(np.float32), freqs[keep]


def window_features(windows: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Features of a batch of windows, all from a single batched STFT.

    Parameters
    ----------
    windows : np.ndarray [shape=(n_windows, config.window_samples)]
        Mono audio windows at ``config.sample_rate``.

    Returns
    -------
    features : np.ndarray [shape=(n_windows, config.n_frames, config.n_features)], float32
        Per frame: log-mel (``n_mels``), MFCC (``n_mfcc``), chroma (``n_chroma``),
        spectral contrast (``contrast_bands + 1``), in that order (see
        :meth:`FeatureConfig.feature_slices`). Each window is computed on its own:
        the result for one window never depends on the others in the batch.
    """
    import librosa

    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != config.window_samples:
        raise ValueError(
            f"expected windows of shape (n, {config.window_samples}), got {windows.shape}"
        )
    if windows.shape[0] == 0:
        return np.zeros((0, config.n_frames, config.n_features), dtype=np.float32)

    mel_fb, chroma_fb, freqs = _filterbanks(config)
    stft = librosa.stft(windows, n_fft=config.n_fft, hop_length=config.hop_length, center=True)
    magnitude = np.abs(stft[:, : len(freqs), :])  # (n, bins <= fmax, frames)
    power = magnitude**2

    mel = np.einsum("mf,nft->nmt", mel_fb, power)
    # An absolute floor, not power_to_db's top_db: top_db is relative to the
    # batch maximum and would make a window's features depend on its neighbours.
    log_mel = 10.0 * np.log10(np.maximum(mel, config.log_floor))
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    chroma = librosa.util.normalize(
        np.einsum("cf,nft->nct", chroma_fb, power), norm=np.inf, axis=-2
    )
    contrast = librosa.feature.spectral_contrast(
        S=magnitude,
        sr=config.sample_rate,
        freq=freqs,
        fmin=config.contrast_fmin,
        n_bands=config.contrast_bands,
    )
    stacked = np.concatenate([log_mel, mfcc, chroma, contrast], axis=1)  # (n, feat, frames)
    return np.ascontiguousarray(stacked.transpose(0, 2, 1), dtype=np.float32)


def window_rms_db(windows: np.ndarray) -> np.ndarray:
    """Level of each window in dBFS.

    Parameters
    ----------
    windows : np.ndarray [shape=(n_windows, n_samples)]

    Returns
    -------
    level : np.ndarray [shape=(n_windows,)]
        ``20 log10(rms)``; digital silence gives -inf.
    """
    rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=-1))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms)
