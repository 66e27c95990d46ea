"""Augmentation that imitates production and distribution, for training copies of both models.

A track in a user's library differs from a GTZAN clip by how it was mastered and
delivered, not by its genre: spectral balance (EQ tilt), dynamics (compression),
level and clipping (gain pushed into full scale), lossy coding (MP3 at a low or
middling bit rate), and small tuning / tempo differences. Each training copy gets
a random mix of these; the level itself is then undone by the tagger's own
normalisation (:func:`genrefy_tagger.reading.loudness.normalise_clip`), exactly as at tag time.

The recipe of copy ``c`` of a track is a pure function of (track id, c).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    tilt_db_per_octave: float  # around 1 kHz, limited to ±12 dB
    compress_ratio: float  # 1: none
    compress_threshold_db: float  # relative to the clip's RMS level
    pitch_semitones: float
    tempo_rate: float
    gain_db: float  # before clipping at full scale
    mp3_kbps: int  # 0: no re-encode

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def recipe_for(track_id: str, copy: int) -> Recipe:
    """The deterministic random recipe of copy ``copy`` of ``track_id``."""
    digest = hashlib.sha256(f"{track_id}/{copy}/prod-v{RECIPE_VERSION}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    shift = rng.integers(3)  # 0: neither, 1: pitch, 2: tempo (each alone, small)
    return Recipe(
        tilt_db_per_octave=float(rng.uniform(-2.5, 2.5)),
        compress_ratio=float(rng.uniform(2.0, 6.0)) if rng.random() < 0.5 else 1.0,
        compress_threshold_db=float(rng.uniform(-8.0, 2.0)),
        pitch_semitones=float(rng.uniform(-1.0, 1.0)) if shift == 1 else 0.0,
        tempo_rate=float(rng.uniform(0.93, 1.07)) if shift == 2 else 1.0,
        gain_db=float(rng.uniform(-12.0, 9.0)),
        mp3_kbps=int(rng.choice([64, 96, 128])) if rng.random() < 0.5 else 0,
    )


def eq_tilt(y: np.ndarray, sample_rate: int, db_per_octave: float) -> np.ndarray:
    """Spectral tilt around 1 kHz (positive: brighter), at most ±12 dB."""
    spec = np.fft.rfft(y)
    freqs = np.fft.rfftfreq(len(y), 1.0 / sample_rate)
    gain_db = np.clip(db_per_octave * np.log2(np.maximum(freqs, 50.0) / 1000.0), -12.0, 12.0)
    return np.fft.irfft(spec * 10.0 ** (gain_db / 20.0), n=len(y)).astype(np.float32)


def compress(y: np.ndarray, sample_rate: int, ratio: float, threshold_db: float) -> np.ndarray:
    """A feed-forward RMS compressor (10-ms detector, ~50-ms smoothed gain)."""
    if ratio <= 1.0:
        return y
    hop = max(1, int(0.01 * sample_rate))
    n = len(y) // hop
    if n == 0:
        return y
    env = np.sqrt(np.mean(np.square(y[: n * hop].reshape(n, hop)), axis=1) + 1e-12)
    env_db = 20 * np.log10(env)
    level = 20 * np.log10(np.sqrt(np.mean(np.square(y)) + 1e-12))
    over = np.maximum(env_db - (level + threshold_db), 0.0)
    gain_db = np.convolve(-over * (1.0 - 1.0 / ratio), np.ones(5) / 5, mode="same")
    per_sample = np.interp(np.arange(len(y)), np.arange(n) * hop + hop / 2, gain_db)
    return (y * 10.0 ** (per_sample / 20.0)).astype(np.float32)


def mp3_roundtrip(y: np.ndarray, sample_rate: int, kbps: int) -> np.ndarray:
    """Encode to MP3 with PyAV (libmp3lame) and decode back with the tagger's decoder."""
    import av

    from genrefy_tagger.reading import audio

    fd, name = tempfile.mkstemp(suffix=".mp3")
    os.close(fd)
    try:
        with av.open(name, "w", format="mp3") as out:
            stream = out.add_stream("mp3", rate=sample_rate, layout="mono")
            stream.bit_rate = kbps * 1000
            size = stream.codec_context.frame_size or 1152
            data = np.clip(y, -1.0, 1.0).astype(np.float32)
            for i in range(0, len(data), size):
                frame = av.AudioFrame.from_ndarray(data[None, i : i + size], format="fltp",
                                                   layout="mono")  # fmt: skip
                frame.sample_rate = sample_rate
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        decoded = audio.load(Path(name), sample_rate=sample_rate)
    finally:
        os.unlink(name)
    return decoded[: len(y)]


def apply(y: np.ndarray, sample_rate: int, recipe: Recipe) -> np.ndarray:
    """One production-style copy of a mono float32 clip (clipped to full scale)."""
    import librosa

    out = np.asarray(y, dtype=np.float32)
    if recipe.pitch_semitones:
        out = librosa.effects.pitch_shift(out, sr=sample_rate, n_steps=recipe.pitch_semitones)
    if recipe.tempo_rate != 1.0:
        out = librosa.effects.time_stretch(out, rate=recipe.tempo_rate)
    out = eq_tilt(out, sample_rate, recipe.tilt_db_per_octave)
    out = compress(out, sample_rate, recipe.compress_ratio, recipe.compress_threshold_db)
    out = np.clip(out * 10.0 ** (recipe.gain_db / 20.0), -1.0, 1.0).astype(np.float32)
    if recipe.mp3_kbps:
        out = mp3_roundtrip(out, sample_rate, recipe.mp3_kbps)
    return out
