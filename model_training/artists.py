"""Which clips in no fault-filtered list may be trained on without hearing a scored artist.

The fault-filtered lists (Kereliuk, Sturm & Larsen 2015) keep every artist inside one of
train / valid / test, but only for the clips they list: the 81 clips they leave out
(repetitions, mislabellings, distortions) belong to no split, and their artists can be
anyone's. Training on them can therefore put an evaluation artist into training — on the
shared folder, Janet Jackson's pop.00067 and pop.00068 (unlisted) sit beside five
ff-test clips of hers, and four unlisted Destiny's Child clips beside six ff-valid ones.

``splits/artists.csv`` names the artist of the clips that matter here (every shared clip
in ff-valid, ff-test or no list), from the public Shazam identifications of GTZAN in
seungheondoh/gtzan-bind (``dataset/metadata/doh2023fingerprint``). An unlisted clip is
trained on only when its artist is known and is not the artist of any valid or test clip.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .dataset import PACKAGED_SPLITS, Clip

ARTISTS = PACKAGED_SPLITS / "artists.csv"
#: Credits such as "A, B & C feat. D" name several artists; any one shared counts.
_SEPARATORS = re.compile(r",|&| feat\. | featuring ", flags=re.IGNORECASE)


def read_artists(path: str | Path = ARTISTS) -> dict[str, str]:
    """track id → artist credit, as annotated."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["track_id"]: row["artist"] for row in csv.DictReader(f)}


def names(credit: str) -> set[str]:
    """The artists of one credit, case-folded: ``"Christina Aguilera, Lil' Kim"`` → 2 names."""
    return {n.strip().casefold() for n in _SEPARATORS.split(credit) if n.strip()}


def unsafe_unlisted(clips: Iterable[Clip], artists: Mapping[str, str]) -> dict[str, str]:
    """The clips in no list that must not be trained on: track id → why.

    Only clips whose ``ff_split`` is ``"none"`` are judged; an evaluation clip is one in
    the valid or test list.
    """
    clips = list(clips)
    scored: dict[str, Clip] = {}  # artist name → the first evaluation clip by them
    for c in clips:
        if c.ff_split in ("valid", "test") and c.track_id in artists:
            for name in names(artists[c.track_id]):
                scored.setdefault(name, c)
    unsafe = {}
    for c in clips:
        if c.ff_split != "none":
            continue
        if c.track_id not in artists:
            unsafe[c.track_id] = "in no list and its artist is unknown"
            continue
        shared = sorted(names(artists[c.track_id]) & set(scored))
        if shared:
            other = scored[shared[0]]
            unsafe[c.track_id] = (
                f"in no list, by {artists[c.track_id]}, whose {other.track_id} is in "
                f"ff-{other.ff_split}"
            )
    return unsafe
