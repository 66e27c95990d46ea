"""Finding GTZAN clips on disk, and splitting them by track.

Three layouts are recognised, whatever the audio format:

* the original release: ``genres/<g>/<g>.000NN.au``
* the Kaggle copy: ``Data/genres_original/<g>/<g>.000NN.wav`` (or a root that is
  ``genres_original`` itself)
* the project's shared folder: ``genres/<g>/<g>.000NN.ogg`` plus ``manifest.csv``
  (used when present: it also gives each clip's original sample rate and
  fault-filtered split)

A clip that cannot be read is skipped and reported, never fatal: the Kaggle copy
ships a corrupt ``jazz.00054.wav``.

Every split here is made of whole tracks: the windows of one recording never sit
on both sides of a split (:func:`assert_disjoint` checks it).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from genrefy_tagger.audio import AudioError, probe
from genrefy_tagger.config import GTZAN_GENRES

#: ``blues.00012`` (with any extension after it).
TRACK_ID = re.compile(r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})$")
AUDIO_EXTENSIONS = (".au", ".wav", ".ogg", ".flac", ".mp3", ".aiff", ".aif")
FF_SPLITS = ("train", "valid", "test")
#: A copy of the Kereliuk/Sturm/Larsen lists ships with the package, for full-GTZAN users.
PACKAGED_SPLITS = Path(__file__).resolve().parent / "splits"


class DatasetError(Exception):
    """No usable clips under the given root."""


@dataclass(frozen=True)
class Clip:
    """One GTZAN recording."""

    track_id: str  # "blues.00012"
    genre: str  # "blues"
    path: Path
    original_sample_rate: int | None = None  # from the manifest, when there is one
    ff_split: str | None = None  # "train" / "valid" / "test" / "none"; None: no list known


@dataclass
class Discovery:
    """What :func:`discover` found under a root."""

    root: Path
    layout: str  # "manifest", "original", "kaggle" or "folders"
    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or id, reason)
    ff_source: str | None = None  # where the fault-filtered lists came from
    missing_listed: list[str] = field(default_factory=list)  # listed ids absent here

    def counts(self) -> dict[str, int]:
        """Clips per genre, in GTZAN order."""
        c = Counter(clip.genre for clip in self.clips)
        return {g: c[g] for g in GTZAN_GENRES if c[g]}

    def summary(self) -> str:
        parts = ", ".join(f"{g} {n}" for g, n in self.counts().items())
        text = f"{len(self.clips)} clips ({self.layout} layout) under {self.root}: {parts}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + "; ".join(
                f"{name} ({why})" for name, why in self.skipped
            )
        return text


def default_data_dir() -> Path:
    """``$GENREFY_GTZAN``, else ``../shared/gtzan`` (relative to the working directory)."""
    return Path(os.environ.get("GENREFY_GTZAN") or "../shared/gtzan")


def track_id_of(name: str) -> str | None:
    """``blues/blues.00012.wav`` → ``blues.00012``; None for anything else."""
    stem = Path(name.strip()).name
    for ext in (*AUDIO_EXTENSIONS, ".txt"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    match = TRACK_ID.match(stem)
    if not match or match["genre"] not in GTZAN_GENRES:
        return None
    return stem


def read_fault_filtered(folder: str | os.PathLike) -> dict[str, str]:
    """Parse ``{train,valid,test}_filtered.txt`` in ``folder``.

    Lines look like ``blues/blues.00012.wav``; only the track id matters, so
    ``.au``, ``.wav`` or no extension at all are the same. Returns
    ``{track_id: "train" | "valid" | "test"}``; an empty dict when the lists are absent.
    """
    folder = Path(folder)
    out: dict[str, str] = {}
    for split in FF_SPLITS:
        path = folder / f"{split}_filtered.txt"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            tid = track_id_of(line)
            if tid is None:
                continue
            if out.get(tid, split) != split:
                raise DatasetError(f"{tid} is listed in two fault-filtered splits")
            out[tid] = split
    return out


def _find_ff_lists(root: Path, splits_dir: str | os.PathLike | None) -> tuple[dict, str | None]:
    if splits_dir is not None and str(splits_dir).lower() == "none":
        return {}, None  # the caller asked to ignore every list
    candidates = [Path(splits_dir)] if splits_dir else []
    candidates += [root / "splits", root.parent / "splits", PACKAGED_SPLITS]
    for folder in candidates:
        lists = read_fault_filtered(folder)
        if lists:
            return lists, str(folder)
    return {}, None


def _check_readable(path: Path) -> str | None:
    """None when the header can be read; else the reason (decode errors surface later)."""
    try:
        info = probe(path)
    except AudioError as exc:
        return str(exc)
    if info.duration <= 0:
        return "no audio frames"
    return None


def _from_manifest(root: Path) -> tuple[list[Clip], list[tuple[str, str]]]:
    clips, skipped = [], []
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tid, genre = row["track_id"], row["genre"]
            path = root / row["path"]
            if not path.is_file():
                skipped.append((row["path"], "missing file"))
                continue
            rate = row.get("original_sample_rate") or ""
            ff = (row.get("fault_filtered_split") or "").strip() or None
            clips.append(Clip(tid, genre, path, int(rate) if rate else None, ff))
    return clips, skipped


def _from_folders(root: Path) -> tuple[list[Clip], list[tuple[str, str]], str]:
    """Any tree whose files are named ``<g>.000NN.<ext>`` inside a ``<g>`` folder."""
    found: dict[str, Path] = {}
    skipped: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            tid = track_id_of(name)
            if tid is None or Path(dirpath).name != tid.split(".")[0]:
                continue
            if tid in found:  # e.g. both blues.00000.au and blues.00000.wav
                skipped.append((str(path.relative_to(root)), f"duplicate of {found[tid].name}"))
                continue
            found[tid] = path
    parts = {p for path in found.values() for p in path.relative_to(root).parts[:-2]}
    if "genres_original" in parts or root.name == "genres_original":
        layout = "kaggle"
    elif "genres" in parts or root.name == "genres":
        layout = "original"
    else:
        layout = "folders"
    clips = [Clip(tid, tid.split(".")[0], path) for tid, path in sorted(found.items())]
    return clips, skipped, layout


def discover(
    root: str | os.PathLike,
    *,
    splits_dir: str | os.PathLike | None = None,
    check_audio: bool = True,
) -> Discovery:
    """All GTZAN clips under ``root``, in track-id order.

    Parameters
    ----------
    splits_dir : folder with ``{train,valid,test}_filtered.txt``; by default
        ``<root>/splits``, then the copy shipped in ``model_training/splits``;
        ``"none"`` ignores the lists (a manifest's own column still counts).
    check_audio : read each file's header and skip (and report) the unreadable ones.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no such folder: {root}")
    if (root / "manifest.csv").is_file():
        clips, skipped = _from_manifest(root)
        layout = "manifest"
    else:
        clips, skipped, layout = _from_folders(root)
    lists, ff_source = _find_ff_lists(root, splits_dir)
    if lists:
        # A manifest's own column wins; otherwise the lists decide ("none": in no list).
        clips = [
            c if c.ff_split else replace(c, ff_split=lists.get(c.track_id, "none")) for c in clips
        ]
    elif layout == "manifest" and any(c.ff_split for c in clips):
        ff_source = "manifest.csv"
    if check_audio:
        kept = []
        for clip in clips:
            reason = _check_readable(clip.path)
            if reason:
                skipped.append((str(clip.path.relative_to(root)), reason))
            else:
                kept.append(clip)
        clips = kept
    clips.sort(key=lambda c: c.track_id)
    if not clips:
        raise DatasetError(
            f"no GTZAN clips under {root}: expected genres/<genre>/<genre>.000NN.<ext>, "
            "Data/genres_original/<genre>/..., or a manifest.csv"
        )
    missing = sorted(set(lists) - {c.track_id for c in clips}) if lists else []
    return Discovery(root, layout, clips, skipped, ff_source, missing)


# --- splits ---------------------------------------------------------------------------------


def choose_split(discovery: Discovery, requested: str = "auto") -> str:
    """``fault-filtered`` when asked or (auto) when every listed clip is here; else ``kfold``."""
    if requested not in ("auto", "fault-filtered", "kfold"):
        raise ValueError(f"unknown split {requested!r}")
    has_lists = any(c.ff_split for c in discovery.clips)
    if requested == "fault-filtered":
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


def genre_counts(clips: Iterable[Clip]) -> dict[str, int]:
    """Clips per genre, in GTZAN order, genres with none left out."""
    c = Counter(clip.genre for clip in clips)
    return {g: c[g] for g in GTZAN_GENRES if c[g]}


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

    def development(self) -> list[str]:
        """Every clip that may be looked at while building the model (not ``test``)."""
        return sorted(set(self.train) | set(self.valid))

    def check(self) -> None:
        """Raise if a track would sit on both sides of any split."""
        assert_disjoint(clips_of(self.train), clips_of(self.valid), clips_of(self.test))
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
        }

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        folds = [(f["train"], f["valid"]) for f in data["folds"]]
        return cls(data["split"], data["train"], data["valid"], data["test"], folds, data["seed"])


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
) -> Plan:
    """Assign every clip a role; see :class:`Plan`. ``split`` is ``kfold`` or ``fault-filtered``."""
    if split == "fault-filtered":
        parts = fault_filtered(clips)
        plan = Plan(
            split,
            names(parts["train"]),
            names(parts["valid"]),
            names(parts["test"]),
            [(names(parts["train"]), names(parts["valid"]))],
            seed,
        )
    elif split == "kfold":
        dev, test = holdout(clips, seed=seed)
        fit, valid = stratified_carve(dev, fraction=valid_fraction, seed=seed)
        folds = [(names(a), names(b)) for a, b in kfold(dev, k=k, seed=seed)]
        plan = Plan(split, names(fit), names(valid), names(test), folds, seed)
    else:
        raise ValueError(f"unknown split {split!r}")
    plan.check()
    return plan
