"""Window probabilities → one decision per track (or per album)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decision:
    """A track's genre scores, best first, and how sure we are."""

    ranked: tuple[tuple[str, float], ...]  # (label, combined score), best first, sums to 1
    agreement: float  # share of windows whose own top genre is the winner
    n_windows: int
    unsure: bool  # confidence below the threshold: nothing should be written
    # Set (to what it sounds like, an MSD tag) when the track sounds like none of the
    # genres (genrefy_tagger.listening.outside); the decision is then unsure too.
    outside: str = ""

    @property
    def genre(self) -> str:
        return self.ranked[0][0]

    @property
    def confidence(self) -> float:
        return self.ranked[0][1]

    def top(self, k: int) -> list[str]:
        """The ``k`` best labels (always at least the winner)."""
        return [label for label, _ in self.ranked[: max(k, 1)]]


def combine(probs: np.ndarray, *, rule: str = "mean") -> np.ndarray:
    """Pool window probabilities into one distribution.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_windows, n_genres)]
    rule : {"mean", "logmean"}
        ``mean`` averages probabilities; ``logmean`` averages log-probabilities
        (a geometric mean, renormalised), which punishes a genre any window rules out.

    Returns
    -------
    pooled : np.ndarray [shape=(n_genres,)], sums to 1
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError("need at least one window of probabilities")
    if rule == "mean":
        pooled = probs.mean(axis=0)
    elif rule == "logmean":
        logs = np.log(np.clip(probs, 1e-7, 1.0)).mean(axis=0)
        pooled = np.exp(logs - logs.max())
    else:
        raise ValueError(f"unknown vote rule {rule!r}")
    return pooled / pooled.sum()


def calibrate(pooled: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature scaling of a probability vector: ``p ** (1 / T)``, renormalised.

    ``T`` is fitted on validation data (stored in the bundle's ``calibration``) so that
    the confidence reads as the probability of being right; ``T > 1`` softens an
    over-confident model. The ranking never changes.
    """
    if temperature == 1.0:
        return pooled
    logs = np.log(np.clip(np.asarray(pooled, dtype=np.float64), 1e-12, 1.0)) / temperature
    out = np.exp(logs - logs.max(axis=-1, keepdims=True))
    return out / out.sum(axis=-1, keepdims=True)


def decide(
    probs: np.ndarray,
    genres: Sequence[str],
    *,
    rule: str = "mean",
    min_confidence: float = 0.0,
    temperature: float = 1.0,
) -> Decision:
    """Combine a track's window probabilities, calibrate them and decide.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_windows, len(genres))]
    temperature : float
        The bundle's calibration (:func:`calibrate`), applied to the pooled scores.
    """
    pooled = calibrate(combine(probs, rule=rule), temperature)
    order = np.argsort(-pooled, kind="stable")
    ranked = tuple((genres[i], float(pooled[i])) for i in order)
    agreement = float(np.mean(np.argmax(probs, axis=1) == order[0]))
    return Decision(ranked, agreement, len(probs), ranked[0][1] < min_confidence)


def album_vote(
    decisions: Sequence[Decision], *, min_confidence: float = 0.0
) -> tuple[Decision | None, dict[str, float], bool]:
    """One vote per track, weighted by its confidence.

    Returns the album decision (None when no track had a decision), the vote
    share of each genre that received votes, and whether the top of the vote
    is a tie (a tie is reported and the album left unsure, never broken silently).
    """
    usable = [d for d in decisions if d is not None]
    if not usable:
        return None, {}, False
    weights: dict[str, float] = {}
    for d in usable:
        weights[d.genre] = weights.get(d.genre, 0.0) + d.confidence
    total = sum(weights.values())
    shares = dict(sorted(((g, w / total) for g, w in weights.items()), key=lambda kv: -kv[1]))
    ranked = tuple(shares.items())
    tie = len(ranked) > 1 and abs(ranked[0][1] - ranked[1][1]) < 1e-9
    agreement = sum(1 for d in usable if d.genre == ranked[0][0]) / len(usable)
    unsure = tie or ranked[0][1] < min_confidence
    return Decision(ranked, agreement, len(usable), unsure), shares, tie
