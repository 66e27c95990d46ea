"""Where each tag system keeps the genre and genrefy's provenance field, with mutagen.

The genre mapping is beets' own, taken from ``mediafile.MediaFile.genres``; the
provenance field is declared the same way:

=================================  ==================  ==============================
tag system (formats)               genre               provenance (ours)
=================================  ==================  ==============================
ID3v2 (MP3, AIFF, WAV, DSF, TTA…)  ``TCON``            ``TXXX:GENREFY``
Vorbis (FLAC, Ogg, Opus, Speex)    ``GENRE`` (1/value) ``GENREFY``
MP4 / M4A (AAC, ALAC)              ``©gen``            ``----:com.genrefy:genrefy``
WMA / ASF                          ``WM/Genre``        ``genrefy``
APEv2 (WavPack, APE, MPC, OFR…)    ``GENRE``           ``GENREFY`` (keys ignore case)
=================================  ==================  ==============================

mediafile picks its storage styles by mutagen class name and misses some classes
(``OggFLAC``, ``TrueAudio``, ``OptimFROG``, ``DSDIFF``, ``TAK``), so the styles are
chosen here by tag system instead. Two deviations, both measured: removing a field
deletes it (mediafile stores an empty list, which leaves an empty ``©gen`` atom in
an MP4), and ID3 genres are read with ``TCON.genres``, which names ID3v1 genre
numbers such as ``(17)`` that mediafile returns raw. Verification (every other tag
unchanged, :meth:`TagSystem.others`) stays on raw mutagen objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediafile import (
    ASFStorageStyle,
    ListMediaField,
    ListStorageStyle,
    MediaFile,
    MP3ListDescStorageStyle,
    MP4ListStorageStyle,
)
from mutagen._vorbis import VComment  # base of every Vorbis-comment tag class
from mutagen.apev2 import APEv2
from mutagen.asf import ASFTags
from mutagen.flac import Padding, VCFLACDict
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

_GENRES: ListMediaField = MediaFile.__dict__["genres"]  # beets' mapping: beets reads it
_PROVENANCE = ListMediaField(
    MP3ListDescStorageStyle(desc="GENREFY"),
    MP4ListStorageStyle("----:com.genrefy:genrefy"),
    ListStorageStyle("GENREFY"),
    ASFStorageStyle("genrefy"),
)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class TagSystem:
    """One tag system: the mediafile styles of our fields, and how to compare the rest."""

    #: a mutagen class name mediafile knows for this tag system
    mediafile_format = ""

    def __init__(self) -> None:
        self.fields = {
            "genre": self._styles(_GENRES),
            "provenance": self._styles(_PROVENANCE),
        }

    def _styles(self, field: ListMediaField) -> list[Any]:
        # mediafile chooses by class name; we choose by tag system (see module docstring).
        return [s for s in field._styles if self.mediafile_format in s.formats]

    def get(self, audio: Any, field: str) -> list[str]:
        for style in self.fields[field]:
            values = style.get_list(audio)
            if values:
                return [_text(v) for v in values]
        return []

    def set(self, audio: Any, field: str, values: list[str]) -> None:
        for style in self.fields[field]:
            if values:
                style.set_list(audio, values)
            else:
                for _ in range(16):  # ID3 TXXX styles delete one frame per call
                    if not style.get_list(audio):
                        break
                    style.delete(audio)

    def keys(self) -> set[str]:
        keys = {s.key for styles in self.fields.values() for s in styles}
        keys |= {f"TXXX:{s.description}" for s in self.fields["provenance"] if s.key == "TXXX"}
        return {k.lower() for k in keys}

    def is_ours(self, key: str) -> bool:
        return key.lower() in self.keys()

    def others(self, audio: Any) -> Any:
        """Every other tag, in a form that compares equal when nothing changed."""
        raise NotImplementedError


class _ID3(TagSystem):
    mediafile_format = "MP3"

    def get(self, audio: Any, field: str) -> list[str]:
        frame = audio.tags.get("TCON") if field == "genre" else None
        if frame is not None:
            # Deviation from mediafile, which returns "(17)(13)" as one raw string: iTunes'
            # ID3v2.3 tags still carry ID3v1 genre numbers; TCON.genres names them.
            return list(frame.genres)
        return super().get(audio, field)

    def others(self, audio: Any) -> Any:
        tags = audio.tags
        frames = sorted((k, repr(f)) for k, f in tags.items() if not self.is_ours(k))
        return frames, [bytes(data) for data in tags.unknown_frames]


class _Vorbis(TagSystem):
    mediafile_format = "OggVorbis"

    def others(self, audio: Any) -> Any:
        comments = sorted((k.lower(), v) for k, v in audio.tags if not self.is_ours(k))
        blocks = [
            (type(b).__name__, b.write())
            for b in getattr(audio, "metadata_blocks", [])  # FLAC: pictures, cue sheet…
            if not isinstance(b, (VCFLACDict, Padding))
        ]
        return audio.tags.vendor, comments, blocks


class _MP4(TagSystem):
    mediafile_format = "MP4"

    def others(self, audio: Any) -> Any:
        # Values are lists (MP4Cover, MP4FreeForm compare bytes and data type) or, for
        # iTunes' boolean atoms such as cpil and pgap, plain bools.
        return {k: v for k, v in audio.tags.items() if not self.is_ours(k)}


class _ASF(TagSystem):
    mediafile_format = "ASF"

    def others(self, audio: Any) -> Any:
        attrs = [
            (name, type(a).__name__, a.value, a.language, a.stream)
            for name, a in audio.tags
            if not self.is_ours(name)
        ]
        return sorted(attrs, key=repr)


class _APE(TagSystem):
    mediafile_format = "MonkeysAudio"

    def others(self, audio: Any) -> Any:
        return {
            k.lower(): (type(v).__name__, v.value)
            for k, v in audio.tags.items()
            if not self.is_ours(k)
        }


_SYSTEMS: tuple[tuple[type, Callable[[], TagSystem]], ...] = (
    (ID3, _ID3),
    (VComment, _Vorbis),
    (MP4Tags, _MP4),
    (ASFTags, _ASF),
    (APEv2, _APE),
)


def system_for(tags: Any) -> TagSystem | None:
    """The tag system of a mutagen tag object (``audio.tags``), or None if unsupported."""
    for tag_type, system in _SYSTEMS:
        if isinstance(tags, tag_type):
            return system()
    return None
