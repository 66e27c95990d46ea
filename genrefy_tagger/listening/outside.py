"""Music outside the model's genres: abstain, and say what it sounds like instead.

A genre head always names one of its ten genres, however foreign the music: salsa comes
out as jazz, stand-up comedy as hip-hop, at confidences above the threshold. The
front-end's own 50 MSD tags (electronic, soul, rnb, folk, ambient, ...) and the head's
pooled scores together say more: a logistic-regression detector over them, fitted on
real commercial previews outside and inside the ten genres (artist-grouped, see
``model_training/musicnn/outside.py``), stored as plain numbers in ``bundle.json``
(``outside``). A track it scores at or above its threshold is left unsure, and the
reason names the strongest genre-like MSD tag that is not one of the ten.

The same :func:`features` and :meth:`OutsideRule.score` run in training and tagging.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .model import BundleError
from .vote import Decision

#: MSD tags that name a kind of music the ten genres do not cover: the reason names
#: the strongest of them (the others — rock, jazz, 80s, guitar... — would not explain).
NAMED_TAGS: tuple[str, ...] = (
    "electronic", "electronica", "electro", "dance", "House", "ambient", "chillout", "soul",
    "rnb", "funk", "folk", "easy listening", "experimental", "punk",
)  # fmt: skip
#: Floors of the logarithms: MSD tag scores and pooled probabilities reach 0.
_TAG_FLOOR, _PROB_FLOOR = 1e-4, 1e-6


def features(tags: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """One track's detector input: log mean MSD tag scores (50), log pooled genre scores.

    ``tags``: the track's MSD tag scores averaged over its windows; ``pooled``: the
    calibrated pooled genre scores in the bundle's genre order.
    """
    tags = np.asarray(tags, dtype=np.float64)
    pooled = np.asarray(pooled, dtype=np.float64)
    return np.concatenate([np.log(tags + _TAG_FLOOR), np.log(pooled + _PROB_FLOOR)], axis=-1)


@dataclass(frozen=True)
class OutsideRule:
    """A standardised logistic regression and its threshold (``bundle.json``'s ``outside``)."""

    tag_names: tuple[str, ...]  # the front-end's tags, in the order of ``tags``
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float  # score at or above it: outside the genres, left unsure
    meta: dict[str, Any]  # how it was fitted and measured (kept as read)

    @classmethod
    def for_threshold(cls, meta: dict[str, Any], min_confidence: float) -> OutsideRule | None:
        """The rule tagging applies: none when every pick is asked for (threshold 0)."""
        return cls.from_meta(meta) if min_confidence > 0 else None

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> OutsideRule | None:
        """The bundle's rule, or None when the bundle has none (older or other kinds)."""
        spec = meta.get("outside")
        if not spec:
            return None
        try:
            rule = cls(
                tuple(spec["tag_names"]),
                np.asarray(spec["mean"], dtype=np.float64),
                np.asarray(spec["scale"], dtype=np.float64),
                np.asarray(spec["coef"], dtype=np.float64),
                float(spec["intercept"]),
                float(spec["threshold"]),
                spec,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"bundle.json's outside is malformed: {exc}") from exc
        n = len(rule.tag_names) + len(meta.get("genres", ()))
        if not (rule.mean.shape == rule.scale.shape == rule.coef.shape == (n,)):
            raise BundleError(f"bundle.json's outside needs {n} weights per vector")
        return rule

    def to_meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "tag_names": list(self.tag_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            **extra,
        }

    def score(self, tags: np.ndarray, pooled: np.ndarray) -> float:
        """Probability-like score that the track is outside the genres (0 to 1)."""
        z = (features(tags, pooled) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept))))

    def sounds_like(self, tags: np.ndarray) -> str:
        """The genre-like MSD tag outside the ten that stands out most (for the reason).

        "Stands out": the largest standardised log score against the clips the rule was
        fitted on — raw scores would name the tags the front-end says of everything.
        """
        named = [i for i, t in enumerate(self.tag_names) if t in NAMED_TAGS]
        z = np.log(np.asarray(tags, np.float64)[named] + _TAG_FLOOR) - self.mean[named]
        best = named[int(np.argmax(z / self.scale[named]))]
        return self.tag_names[best].lower()

    def apply(self, decision: Decision, tags: np.ndarray | None, genres: Sequence[str]) -> Decision:
        """``decision``, left unsure with ``outside`` set when the track scores outside.

        Also on a track already below the threshold: the reason then says more than
        "below --min-confidence".
        """
        if tags is None:
            return decision
        scores = dict(decision.ranked)
        pooled = np.array([scores.get(g, 0.0) for g in genres])
        if self.score(tags, pooled) < self.threshold:
            return decision
        return replace(decision, unsure=True, outside=self.sounds_like(tags))


def judge(
    rule: OutsideRule | None, decision: Decision, tags: np.ndarray | None, genres: Sequence[str]
) -> Decision:
    """``rule.apply`` where there is a rule (tagging and the cache decide alike)."""
    return decision if rule is None else rule.apply(decision, tags, genres)


def unsure_reason(decision: Decision) -> str:
    """Why nothing is written on a track that the model called outside its genres."""
    return f"sounds like {decision.outside}, which is not one of its genres"


def mostly_outside(decisions: Sequence[Decision]) -> str | None:
    """What an album sounds like when at least half its vote (by confidence) comes from
    tracks that sound like none of the genres; else None (the album is voted as usual)."""
    total = sum(d.confidence for d in decisions)
    foreign = [d for d in decisions if d.outside]
    if not foreign or sum(d.confidence for d in foreign) < total / 2:
        return None
    return Counter(d.outside for d in foreign).most_common(1)[0][0]
