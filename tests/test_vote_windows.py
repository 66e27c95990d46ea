"""Window planning and voting."""

from __future__ import annotations

import numpy as np
import pytest

from genrefy_tagger.listening.vote import album_vote, combine, decide
from genrefy_tagger.reading.windows import WindowPolicy, plan_starts

GENRES = ("a", "b", "c")


def test_short_tracks_are_cut_back_to_back():
    assert plan_starts(30.0, window_seconds=3.0, policy=WindowPolicy()) == [
        3.0 * i for i in range(10)
    ]
    assert plan_starts(2.9, window_seconds=3.0, policy=WindowPolicy()) == []
    assert plan_starts(0.0, window_seconds=3.0, policy=WindowPolicy()) == []


def test_long_tracks_get_a_bounded_spread():
    for duration in (240.0, 3600.0):
        starts = plan_starts(duration, window_seconds=3.0, policy=WindowPolicy())
        assert len(starts) == 10
        assert starts[0] >= min(duration * 0.05, 15.0) - 1e-9
        assert starts[-1] + 3.0 <= duration - min(duration * 0.05, 15.0) + 1e-9
        assert np.all(np.diff(starts) >= 3.0)  # no overlap
    every = plan_starts(240.0, window_seconds=3.0, policy=WindowPolicy(max_windows=None))
    assert len(every) == 80


def test_mean_and_logmean():
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    np.testing.assert_allclose(combine(p, rule="mean"), [0.55, 0.4, 0.05])
    lm = combine(p, rule="logmean")
    assert lm.sum() == pytest.approx(1.0) and lm[2] < 1e-3  # a vetoed genre stays vetoed
    with pytest.raises(ValueError):
        combine(p, rule="median")
    with pytest.raises(ValueError):
        combine(np.zeros((0, 3)))


def test_decide_reports_agreement_and_abstains():
    p = np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    d = decide(p, GENRES, min_confidence=0.3)
    assert d.genre == "a" and d.top(2) == ["a", "b"]
    assert d.agreement == pytest.approx(2 / 3) and d.n_windows == 3 and not d.unsure
    assert decide(p, GENRES, min_confidence=0.9).unsure


def test_album_vote_reports_ties():
    da = decide(np.array([[0.8, 0.1, 0.1]]), GENRES)
    db = decide(np.array([[0.1, 0.8, 0.1]]), GENRES)
    album, shares, tie = album_vote([da, db])
    assert tie and album.unsure and set(shares) == {"a", "b"}
    album, shares, tie = album_vote([da, da, db])
    assert not tie and album.genre == "a" and shares["a"] == pytest.approx(2 / 3)
    assert album_vote([]) == (None, {}, False)


def test_calibration_keeps_the_ranking_and_moves_the_confidence():
    from genrefy_tagger.listening.vote import calibrate, decide

    pooled = np.array([0.6, 0.3, 0.1])
    assert calibrate(pooled, 1.0) is pooled
    sharp, soft = calibrate(pooled, 0.5), calibrate(pooled, 2.0)
    assert sharp.sum() == pytest.approx(1.0) and soft.sum() == pytest.approx(1.0)
    assert sharp.argmax() == soft.argmax() == 0
    assert sharp[0] == pytest.approx(0.36 / 0.46) and soft[0] < 0.6 < sharp[0]
    d = decide(pooled[None, :], ("a", "b", "c"), min_confidence=0.7, temperature=0.5)
    assert d.genre == "a" and d.confidence == pytest.approx(0.36 / 0.46) and not d.unsure


def test_threshold_and_temperature_fitting():
    from model_training.calibration import choose_threshold, fit_temperature

    rng = np.random.default_rng(0)
    logits = 1.5 * rng.normal(size=(2000, 3))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # Labels drawn from the probabilities: these are calibrated by construction.
    labels = (rng.random(2000)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    overconfident = probs**3 / (probs**3).sum(1, keepdims=True)
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.25)
    t = choose_threshold(probs, labels, target=0.9)
    keep = probs.max(1) >= t["threshold"]
    assert t["reached"] and (probs.argmax(1) == labels)[keep].mean() >= 0.9
    assert t["coverage"] == pytest.approx(keep.mean())
