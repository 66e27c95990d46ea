"""MPEG audio whose length decoders estimate from its size: only an existing ID3v1 tag changes.

An MP3 (or MP2) with no ID3v2 tag and no Xing/Info/VBRI header carries no frame count,
so decoders estimate its length from the file size. Any tag that adds bytes moves an
estimate, even though every decoded sample stays the same. Measured on such a preview:

* an ID3v2 tag in front moves libsndfile's (libmpg123's) frame count;
* an APEv2 tag behind moves it as well;
* a new 128-byte ID3v1 tag behind leaves libsndfile's count alone, but moves FFmpeg's
  duration (by 128 bytes at the bit rate: about 10 ms).

Store previews look like this: 172 of the 182 allmusic previews have no tag at all.
genrefy leaves them unchanged and says why. If the file already has an ID3v1 tag, its
genre byte is rewritten in place, as older rips often need. Then no byte is added and
every decoder reads the file exactly as before.

ID3v1 holds one genre from its fixed list of 192; the ten genres are all in it. It has
no room for genrefy's provenance field, so later runs take the genre for the user's
(``--overwrite`` replaces it). The decoder check in ``safe_write`` still decides.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mutagen.id3 import TCON
from mutagen.id3 import delete as delete_id3
from mutagen.mp3 import MP3, BitrateMode

from .safe_write import TagError

NO_TAG = (
    "no tag and no length header: any tag would change the length decoders estimate "
    "from its size; left unchanged"
)
_ONLY_V1 = "only its ID3v1 tag can change (no length header)"


def size_estimated(audio: Any) -> str | None:
    """For MPEG audio with no ID3v2 tag and no length header: ``"id3v1"`` when it has an
    ID3v1 tag to update, else ``"none"``; None for every other file."""
    if not isinstance(audio, MP3) or audio.info.bitrate_mode != BitrateMode.UNKNOWN:
        return None
    # Not audio.tags.version: a file without tags was given an empty (2, 4) tag on opening.
    with open(audio.filename, "rb") as f:
        if f.read(3) == b"ID3":
            return None
        f.seek(0, os.SEEK_END)
        if f.tell() < 128:
            return "none"
        f.seek(-128, os.SEEK_END)
        return "id3v1" if f.read(3) == b"TAG" else "none"


def id3v1_refusal(estimated: str, genres: Sequence[str]) -> str | None:
    """Why a size-estimated file (``estimated`` from :func:`size_estimated`) is left alone
    with these ``genres``: it has no tag, or ID3v1 cannot hold them; None when it can."""
    if estimated == "none":
        return NO_TAG
    if len(genres) > 1:
        return f"{_ONLY_V1}, and ID3v1 holds one genre, not {len(genres)}; left unchanged"
    if genres and genres[0] not in TCON.GENRES:
        return f"{_ONLY_V1}, and {genres[0]!r} is not an ID3v1 genre; left unchanged"
    return None


def save_id3v1(audio: Any) -> None:
    """Write ``audio``'s tags into its existing ID3v1 tag only; mutagen renders the bytes."""
    # mutagen writes ID3v1 (v1=1: update the one there) only together with an ID3v2 tag,
    # which is then removed again: the file ends up as before but for its ID3v1 tag.
    try:
        audio.save(v1=1, v2_version=4)
        delete_id3(audio.filename, delete_v1=False, delete_v2=True)
    except Exception as exc:  # mutagen's write errors
        raise TagError(f"cannot write the ID3v1 tag: {exc}") from exc
