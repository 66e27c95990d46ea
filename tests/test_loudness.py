"""Level invariance by design: the same music at another level, or after silence, is heard alike."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from genrefy_tagger.reading import loudness
from genrefy_tagger.reading.config import FeatureConfig
from genrefy_tagger.reading.windows import WindowPolicy, read_windows

ROOT = Path(__file__).resolve().parents[1]


def test_trim_bounds_find_the_music_after_silence():
    sr = 16000
    rng = np.random.default_rng(0)
    music = (0.1 * rng.standard_normal(5 * sr)).astype(np.float32)
    padded = np.concatenate([np.zeros(3 * sr, np.float32), music, np.zeros(2 * sr, np.float32)])
    start, stop = loudness.trim_bounds(padded, sr)
    assert start == 3 * sr and stop == 8 * sr
    assert loudness.trim_bounds(0.01 * padded, sr) == (start, stop)  # level does not move it
    assert loudness.trim_bounds(np.zeros(sr, np.float32), sr) == (0, 0)


def test_gate_and_gain_ignore_the_level():
    levels = np.array([-20.0, -22.0, -18.0, -75.0, -65.0, -21.0])  # a pause, and a quiet bar
    mask = loudness.audible(levels, floor_db=-60.0)
    assert mask.tolist() == [True, True, True, False, False, True]
    assert (loudness.audible(levels - 12.0, floor_db=-80.0) == mask).all()
    g = loudness.gain(levels, mask, -17.8)
    g12 = loudness.gain(levels - 12.0, mask, -17.8)
    assert g12 == pytest.approx(g * 10 ** (12 / 20))
    assert loudness.gain(levels, mask, None) == 1.0


def _clips(gtzan_dir: Path, n: int = 2) -> list[Path]:
    with open(gtzan_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["genre"] in ("classical", "pop", "jazz")]
    return [gtzan_dir / r["path"] for r in rows[:: max(1, len(rows) // n)][:n]]


def _variants(src: Path, tmp_path: Path) -> dict[str, Path]:
    import soundfile as sf

    y, sr = sf.read(str(src), dtype="float32")
    out = {}
    for name, z in {
        "minus12": y * 10 ** (-12 / 20),
        "plus6": y * (10 ** (6 / 20) if np.abs(y).max() * 2 < 1 else 0.99 / np.abs(y).max()),
        "padded": np.pad(y, int(4 * sr)),
    }.items():
        out[name] = tmp_path / f"{src.stem}.{name}.wav"
        sf.write(str(out[name]), z, sr, subtype="FLOAT")
    return out


def test_real_clips_are_heard_alike_at_any_level(gtzan_dir: Path, tmp_path: Path):
    """Both read paths give the same normalised windows; the shipped default the same scores."""
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.reading.musicnn import read_track_windows

    predictor = MusicnnPredictor(ROOT / "genrefy_tagger" / "models" / "musicnn")
    policy = WindowPolicy(max_windows=6)
    config = FeatureConfig()
    for src in _clips(gtzan_dir):
        ref_seg, ref_starts = read_track_windows(src, policy=policy, config=predictor.config)[:2]
        ref_win = read_windows(src, config=config, policy=policy).samples
        ref_probs = predictor.window_probabilities(src, policy=policy)[0]
        rms = np.sqrt(np.mean(ref_seg[:, 256 : 256 + 48000] ** 2, axis=1))
        assert np.median(20 * np.log10(rms)) == pytest.approx(loudness.TARGET_DB, abs=0.01)
        for name, path in _variants(src, tmp_path).items():
            seg, starts = read_track_windows(path, policy=policy, config=predictor.config)[:2]
            win = read_windows(path, config=config, policy=policy).samples
            probs = predictor.window_probabilities(path, policy=policy)[0]
            if name == "padded":  # resampling rings a sample early: windows may move by one
                assert len(seg) == len(ref_seg) and len(win) == len(ref_win)
                np.testing.assert_allclose(starts - 4.0, ref_starts, atol=0.01)
                np.testing.assert_allclose(probs, ref_probs, atol=0.02, err_msg=src.name)
                continue
            np.testing.assert_allclose(seg, ref_seg, atol=2e-5, err_msg=f"{src.name} {name}")
            np.testing.assert_allclose(win, ref_win, atol=2e-5, err_msg=f"{src.name} {name}")
            np.testing.assert_allclose(probs, ref_probs, atol=1e-3, err_msg=f"{src.name} {name}")
