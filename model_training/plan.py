"""Splitting GTZAN clips by track, and the plan of a training run.

Every split here is made of whole tracks: the windows of one recording never sit
on both sides of a split (:func:`assert_disjoint` checks it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset import FF_SPLITS, Clip, DatasetError, Discovery
from .repetitions import Repetition

#: ``fault-filtered+unlisted``: the lists' split, with the clips in no list trained on too
#: (on the shared folder, ff-train + unlisted holds 261 clips; ff-valid's artists stay unheard).
SPLITS = ("auto", "fault-filtered", "fault-filtered+unlisted", "kfold")


def choose_split(discovery: Discovery, requested: str = "auto") -> str:
    """``fault-filtered`` when asked or (auto) when every listed clip is here; else ``kfold``."""
    if requested not in SPLITS:
        raise ValueError(f"unknown split {requested!r}")
    has_lists = any(c.ff_split for c in discovery.clips)
    if requested.startswith("fault-filtered"):
        if not has_lists:
            raise DatasetError("no fault-filtered lists found (pass --splits DIR)")
        return requested
    if requested == "kfold":
        return requested
    full = has_lists and not discovery.missing_listed and discovery.ff_source != "manifest.csv"
    return "fault-filtered" if full else "kfold"


def holdout(
    clips: Sequence[Clip], *, fraction: float = 0.2, seed: int = 0
) -> tuple[list[Clip], list[Clip]]:
    """(development, held-out test): the fault-filtered test clips when known, else a
    stratified ``fraction`` of the tracks."""
    if any(c.ff_split for c in clips):
        dev = [c for c in clips if c.ff_split != "test"]
        test = [c for c in clips if c.ff_split == "test"]
        return dev, test
    return stratified_carve(clips, fraction=fraction, seed=seed)


def stratified_carve(
    clips: Sequence[Clip], *, fraction: float, seed: int
) -> tuple[list[Clip], list[Clip]]:
    """Split tracks into (rest, carved) with about ``fraction`` of every genre carved.

    Each genre with at least two tracks gives at least one to each side.
    """
    rng = np.random.default_rng(seed)
    rest, carved = [], []
    for genre in sorted({c.genre for c in clips}):
        members = [c for c in clips if c.genre == genre]
        order = rng.permutation(len(members))
        n = int(round(fraction * len(members)))
        n = min(max(n, 1), len(members) - 1) if len(members) >= 2 else 0
        carved += [members[i] for i in order[:n]]
        rest += [members[i] for i in order[n:]]
    assert_disjoint(rest, carved)
    return sorted(rest, key=_key), sorted(carved, key=_key)


def kfold(clips: Sequence[Clip], *, k: int = 5, seed: int = 0) -> list[tuple[list, list]]:
    """Stratified ``k``-fold split of tracks: ``[(train, valid), ...]``, each track valid once."""
    from sklearn.model_selection import StratifiedKFold

    labels = [c.genre for c in clips]
    smallest = min(Counter(labels).values())
    if smallest < k:
        raise DatasetError(f"a genre has only {smallest} clips: too few for {k}-fold CV")
    folds = []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, valid_idx in splitter.split(np.zeros(len(clips)), labels):
        train = [clips[i] for i in train_idx]
        valid = [clips[i] for i in valid_idx]
        assert_disjoint(train, valid)
        folds.append((train, valid))
    return folds


def fault_filtered(clips: Sequence[Clip]) -> dict[str, list[Clip]]:
    """The clips of each fault-filtered split (clips in no list are left out)."""
    return {s: [c for c in clips if c.ff_split == s] for s in FF_SPLITS}


def assert_disjoint(*groups: Iterable[Clip]) -> None:
    """Raise if any track (hence any of its windows) appears in two groups."""
    seen: dict[str, int] = {}
    for i, group in enumerate(groups):
        for clip in group:
            if seen.setdefault(clip.track_id, i) != i:
                raise AssertionError(f"track {clip.track_id} is on both sides of a split")


def _key(clip: Clip) -> str:
    return clip.track_id


# --- the plan of a training run ---------------------------------------------------------------


@dataclass
class Plan:
    """Which clips play which role in one training run (all by track id).

    ``kfold``: ``test`` is the held-out set (the fault-filtered test clips when
    known); ``folds`` split the remaining development clips for cross-validation and
    tuning; the final model trains on ``train`` and early-stops on ``valid``, both
    carved from the development clips.
    ``fault-filtered``: train / valid / test are the three lists, and the one "fold"
    is (train, valid).
    """

    split: str
    train: list[str]
    valid: list[str]
    test: list[str]
    folds: list[tuple[list[str], list[str]]]
    seed: int = 0
    #: Clips in no role, and why: a repeat of another clip's recording, or an unlisted
    #: clip whose artist may be scored (:func:`left_out`).
    left_out: dict[str, str] = field(default_factory=dict)

    def development(self) -> list[str]:
        """Every clip that may be looked at while building the model (not ``test``)."""
        return sorted(set(self.train) | set(self.valid))

    def check(self) -> None:
        """Raise if a track would sit on both sides of any split."""
        assert_disjoint(clips_of(self.train), clips_of(self.valid), clips_of(self.test))
        used = set(self.train) | set(self.valid) | set(self.test)
        if used & set(self.left_out):
            raise AssertionError(f"left-out clips in a role: {sorted(used & set(self.left_out))}")
        for fit, held in self.folds:
            assert_disjoint(clips_of(fit), clips_of(held), clips_of(self.test))

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "seed": self.seed,
            "train": self.train,
            "valid": self.valid,
            "test": self.test,
            "folds": [{"train": a, "valid": b} for a, b in self.folds],
            "left_out": self.left_out,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        folds = [(f["train"], f["valid"]) for f in data["folds"]]
        return cls(
            data["split"], data["train"], data["valid"], data["test"], folds, data["seed"],
            data.get("left_out", {}),
        )  # fmt: skip


def clips_of(track_ids: Iterable[str]) -> list[Clip]:
    """Path-less clips for track ids (enough for splitting: the genre is in the id)."""
    return [Clip(t, t.split(".")[0], Path(t)) for t in track_ids]


def names(clips: Iterable[Clip]) -> list[str]:
    """The track ids of some clips."""
    return [c.track_id for c in clips]


def make_plan(
    clips: Sequence[Clip],
    split: str,
    *,
    k: int = 5,
    valid_fraction: float = 0.15,
    seed: int = 0,
    left_out: Mapping[str, str] | None = None,
) -> Plan:
    """Assign every clip a role; see :class:`Plan`. ``split``: ``kfold``, ``fault-filtered``
    or ``fault-filtered+unlisted``. Clips in ``left_out`` (id → why) get no role."""
    left_out = dict(left_out or {})
    clips = [c for c in clips if c.track_id not in left_out]
    if split.startswith("fault-filtered"):
        parts = fault_filtered(clips)
        if split == "fault-filtered+unlisted":
            parts["train"] = sorted(
                parts["train"] + [c for c in clips if c.ff_split == "none"], key=_key
            )
        plan = Plan(
            split,
            names(parts["train"]),
            names(parts["valid"]),
            names(parts["test"]),
            [(names(parts["train"]), names(parts["valid"]))],
            seed,
            left_out,
        )
    elif split == "kfold":
        dev, test = holdout(clips, seed=seed)
        fit, valid = stratified_carve(dev, fraction=valid_fraction, seed=seed)
        folds = [(names(a), names(b)) for a, b in kfold(dev, k=k, seed=seed)]
        plan = Plan(split, names(fit), names(valid), names(test), folds, seed, left_out)
    else:
        raise ValueError(f"unknown split {split!r}")
    plan.check()
    return plan


def left_out(
    clips: Sequence[Clip],
    split: str,
    repetitions: Iterable[Repetition],
    artists: Mapping[str, str],
) -> dict[str, str]:
    """The clips a run must not use, and why (see :class:`Plan`).

    A recording is heard once: of clips that repeat it, the one in the most valuable
    role stays (:func:`repetitions.redundant`). Where the run trains on clips in no
    list (``kfold`` or ``fault-filtered+unlisted`` with lists known), those whose artist
    may be scored are left out too (:func:`artists.unsafe_unlisted`).
    """
    from .artists import unsafe_unlisted
    from .repetitions import redundant

    roles = {c.track_id: c.ff_split for c in clips}
    why = {
        t: f"repeats the recording of {kept} ({roles[kept] or 'no list'})"
        for t, kept in redundant(repetitions, roles).items()
    }
    if split in ("kfold", "fault-filtered+unlisted"):
        for t, reason in unsafe_unlisted(clips, artists).items():
            why.setdefault(t, reason)
    elif split == "fault-filtered":
        why = {t: r for t, r in why.items() if roles[t] != "none"}  # unused anyway
    return dict(sorted(why.items()))


def left_out_of(
    clips: Sequence[Clip], split: str, *, cache_dir: str | os.PathLike, progress: bool = True
) -> tuple[dict[str, str], list[Repetition]]:
    """:func:`left_out` for ``clips``' own audio and the packaged artist list, with the
    repetitions it found (cached under ``cache_dir``)."""
    from .artists import read_artists
    from .repetitions import repetitions_of

    repeats = repetitions_of(clips, cache_dir=cache_dir, progress=progress)
    return left_out(clips, split, repeats, read_artists()), repeats
