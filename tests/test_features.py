"""Feature extraction: shapes, determinism, per-window independence, the 8 kHz cap."""

from __future__ import annotations

import numpy as np
import pytest
from audiofiles import signal

from genrefy_tagger.reading.config import ConfigError, FeatureConfig
from genrefy_tagger.reading.features import frame_signal, window_features, window_rms_db

CONFIG = FeatureConfig()


def _windows(n: int, seed: int = 0) -> np.ndarray:
    y = signal(seconds=3.0 * n + 0.5, sample_rate=CONFIG.sample_rate, channels=1, seed=seed)[:, 0]
    return frame_signal(y, config=CONFIG)


def test_shapes_and_dtype():
    w = _windows(4)
    assert w.shape == (4, CONFIG.window_samples) and w.dtype == np.float32
    f = window_features(w, config=CONFIG)
    assert f.shape == (4, CONFIG.n_frames, CONFIG.n_features) == (4, 130, 102)
    assert f.dtype == np.float32 and np.isfinite(f).all()


def test_deterministic_and_independent_of_batch():
    w = _windows(5, seed=3)
    a = window_features(w, config=CONFIG)
    b = window_features(w, config=CONFIG)
    np.testing.assert_array_equal(a, b)
    # One window alone gives the same numbers as inside a batch (no batch-relative scaling).
    np.testing.assert_allclose(window_features(w[2:3], config=CONFIG)[0], a[2], atol=1e-4)
    loud = window_features(w * 0.01, config=CONFIG)
    assert not np.allclose(loud[:, :, :64], a[:, :, :64])  # level is kept in the log-mel


def test_nothing_above_fmax_reaches_the_features():
    """A clip band-limited at 8 kHz and its full-band original give the same features."""
    import scipy.signal

    rng = np.random.default_rng(0)
    y = rng.standard_normal(CONFIG.window_samples * 2).astype(np.float32) * 0.1
    sos = scipy.signal.butter(12, 7000, btype="low", fs=CONFIG.sample_rate, output="sos")
    low = scipy.signal.sosfiltfilt(sos, y).astype(np.float32)
    treble = (y - low).astype(np.float32)  # only content above ~7 kHz
    sos_hi = scipy.signal.butter(12, 9500, btype="high", fs=CONFIG.sample_rate, output="sos")
    very_high = scipy.signal.sosfiltfilt(sos_hi, treble).astype(np.float32)
    base = window_features(frame_signal(low, config=CONFIG), config=CONFIG)
    added = window_features(frame_signal(low + very_high, config=CONFIG), config=CONFIG)
    sl = CONFIG.feature_slices()
    for name in ("log_mel", "mfcc", "contrast"):
        # Only window sidelobe leakage at the very edge crosses the cap: tiny next to
        # the spread of the features themselves.
        diff = np.abs(added[..., sl[name]] - base[..., sl[name]]).mean()
        assert diff < 0.01 * base[..., sl[name]].std(), name
    full = window_features(frame_signal(y, config=CONFIG), config=CONFIG)
    assert np.abs(full - base).max() > 1.0  # the test signal's 7-9.5 kHz band does matter


def test_empty_and_bad_input():
    assert window_features(np.zeros((0, CONFIG.window_samples)), config=CONFIG).shape[0] == 0
    with pytest.raises(ValueError):
        window_features(np.zeros((2, 100)), config=CONFIG)
    assert frame_signal(np.zeros(100, np.float32), config=CONFIG).shape == (0, 66150)


def test_rms_levels():
    w = np.stack([np.zeros(1000), np.full(1000, 0.5), np.full(1000, 1e-4)])
    db = window_rms_db(w)
    assert db[0] == -np.inf and db[1] == pytest.approx(-6.02, abs=0.01) and db[2] < -70


def test_config_round_trip_and_refusal():
    assert FeatureConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ConfigError, match="does not know"):
        FeatureConfig.from_dict({**CONFIG.to_dict(), "pcen": True})
    with pytest.raises(ConfigError, match="schema"):
        FeatureConfig.from_dict({**CONFIG.to_dict(), "schema": 99})
    with pytest.raises(ConfigError):
        FeatureConfig.from_dict({**CONFIG.to_dict(), "fmax": 20000.0})
