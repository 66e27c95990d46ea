"""Audio augmentation for training clips (never for validation or test clips).

Each augmented copy of a clip is time-stretched, low-passed at a random cutoff,
then given a production-style treatment (:mod:`model_training.production_augment`:
EQ tilt, compression, gain into clipping, MP3 re-encoding, small pitch or tempo
shift), then framed, gated and level-normalised exactly like a tagged file.

Why: tempo varies within a genre (stretch); 43 of the shared clips were sourced
at 16 kHz and a model must not learn "dull treble ⇒ not classical/pop" (a
low-pass on *every* training clip teaches it that treble says nothing); and a
user's track differs from a GTZAN clip by its mastering and delivery, not by
its genre (production).

The parameters of copy ``v`` of a track are a pure function of (track id, v),
so a cached copy can be recomputed bit for bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from genrefy_tagger.reading import loudness
from genrefy_tagger.reading.config import FeatureConfig
from genrefy_tagger.reading.features import frame_signal, window_features, window_rms_db
from genrefy_tagger.reading.windows import SILENCE_DB

from .. import production_augment
from ..production_augment import Recipe

#: Bumped whenever the recipe below changes, so old cached copies are not reused.
#: 2: edge trim, silence gate and level as the tagger; 3: production-style copies.
AUGMENT_VERSION = 3
STRETCH_RATES = (0.9, 1.1)  # copy 0 slows down, copy 1 speeds up; more copies alternate
LOWPASS_HZ = (3000.0, 8000.0)


@dataclass(frozen=True)
class AugmentParams:
    stretch: float
    lowpass_hz: float
    production: Recipe | None = None  # None: stretch and low-pass only

    def to_dict(self) -> dict:
        return asdict(self)


def params_for(track_id: str, copy: int) -> AugmentParams:
    """The deterministic recipe for copy ``copy`` (0, 1, ...) of ``track_id``."""
    digest = hashlib.sha256(f"{track_id}/{copy}/v{AUGMENT_VERSION}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return AugmentParams(
        stretch=STRETCH_RATES[copy % len(STRETCH_RATES)],
        lowpass_hz=float(rng.uniform(*LOWPASS_HZ)),
        production=production_augment.recipe_for(track_id, copy),
    )


def augment_signal(y: np.ndarray, params: AugmentParams, *, sample_rate: int) -> np.ndarray:
    """Stretch, low-pass and give a production treatment to a mono signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 at ``sample_rate``

    Returns
    -------
    y_aug : np.ndarray [shape=(about n / params.stretch,)], float32, clipped to [-1, 1]
    """
    import librosa
    from scipy.signal import butter, sosfiltfilt

    out = librosa.effects.time_stretch(np.asarray(y, dtype=np.float32), rate=params.stretch)
    nyquist = sample_rate / 2
    if params.lowpass_hz < nyquist:
        # Zero-phase (forward-backward) so onsets stay where they were.
        sos = butter(6, params.lowpass_hz / nyquist, btype="low", output="sos")
        out = sosfiltfilt(sos, out)
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    if params.production is not None:
        out = production_augment.apply(out, sample_rate, params.production)
    return out


def augmented_features(
    y: np.ndarray, params: AugmentParams, *, config: FeatureConfig
) -> np.ndarray:
    """Features of an augmented copy, silent windows dropped as the tagger drops them.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The decoded clip, mono at ``config.sample_rate``.

    Returns
    -------
    features : np.ndarray [shape=(n_windows, config.n_frames, config.n_features)], float32
    """
    y_aug = augment_signal(y, params, sample_rate=config.sample_rate)
    start, stop = loudness.trim_bounds(y_aug, config.sample_rate)
    windows = frame_signal(y_aug[start:stop], config=config)
    if len(windows):  # the tagger's silence gate and level normalisation (windows.read_windows)
        levels = window_rms_db(windows)
        keep = loudness.audible(levels, floor_db=SILENCE_DB)
        windows = windows[keep] * np.float32(loudness.gain(levels, keep, config.loudness_db))
    return window_features(windows, config=config)
