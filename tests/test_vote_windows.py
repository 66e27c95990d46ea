"""Window planning and voting."""

from __future__ import annotations

import numpy as np
import pytest

from genrefy_tagger.vote import album_vote, combine, decide
from genrefy_tagger.windows import WindowPolicy, plan_starts

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
