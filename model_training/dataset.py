"""Finding GTZAN clips on disk, and the fault-filtered lists that come with them.

Three layouts are recognised, whatever the audio format:

* the original release: ``genres/<g>/<g>.000NN.au``
* the Kaggle copy: ``Data/genres_original/<g>/<g>.000NN.wav`` (or a root that is
  ``genres_original`` itself)
* the project's shared folder: ``genres/<g>/<g>.000NN.ogg`` plus ``manifest.csv``
  (used when present: it also gives each clip's original sample rate and
  fault-filtered split)

A clip that cannot be read is skipped and reported, never fatal: the Kaggle copy
ships a corrupt ``jazz.00054.wav``.

Splitting the clips by track is :mod:`model_training.plan`.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from genrefy_tagger.reading.audio import AudioError, probe
from genrefy_tagger.reading.config import GTZAN_GENRES

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


def genre_counts(clips: Iterable[Clip]) -> dict[str, int]:
    """Clips per genre, in GTZAN order, genres with none left out."""
    c = Counter(clip.genre for clip in clips)
    return {g: c[g] for g in GTZAN_GENRES if c[g]}
