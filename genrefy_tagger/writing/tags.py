"""Reading and writing the genre tag, and genrefy's provenance field, with mutagen.

Which field holds each in every tag system (ID3v2, Vorbis comments, MP4, ASF,
APEv2) is :mod:`genrefy_tagger.writing.tag_systems`; formats with no tag system (raw AAC,
AC-3…) raise :class:`CannotHoldTags`.

All of them hold several genres. ID3v2.3 has no multi-value text in its spec; we
store the values separated by NUL as v2.4 does (mutagen's ``v23_sep=None``)
rather than joining them with "/", because joining would also rewrite every
other multi-value frame in the file.

Write safety (see ``safe_write``): every write goes to a hidden copy in the same
folder, is read back and checked (our fields hold exactly what we wrote, every
other tag is unchanged, the audio payload hashes the same, every decoder reads it
the same), then replaces the original with one rename (hard links: ``hard_links``).
Any failure leaves the original byte-identical. The ID3 version is kept: v2.3 stays
v2.3, v2.4 stays v2.4, a file without ID3v2 gets v2.4, and mutagen cannot write
v2.2, which becomes v2.3; an ID3v1 tag is updated, never added. An MPEG file whose
length decoders estimate from its size gets no ID3v2 tag: only its ID3v1 tag changes, and
without one it is left alone (:mod:`genrefy_tagger.writing.id3v1`). Read-only files (no
write bit for anyone) are refused. Symlinks are written through to their target.

mtime policy: by default the file's mtime becomes "now" since its content changed
(beets and sync tools rely on that); ``keep_mtime=True`` restores the original
access and modification times.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutagen.aiff import AIFF
from mutagen.id3 import ID3, ID3FileType
from mutagen.wave import WAVE

from ..reading.formats import (
    AUDIO_EXTENSIONS,
    TAGGABLE_EXTENSIONS,
    mutagen_class,
    untaggable_reason,
)
from .id3v1 import id3v1_refusal, save_id3v1, size_estimated
from .provenance import format_provenance as format_provenance  # re-exported
from .provenance import parse_provenance as parse_provenance  # re-exported
from .safe_write import (
    LeftAlone,
    TagError,
    audio_fingerprint,
    left_alone,
    replace_atomically,
    resolve_target,
    short_reason,
)
from .tag_systems import TagSystem, system_for

#: Every audio extension gets a row; see ``formats.py`` for which can hold tags.
SUPPORTED_EXTENSIONS: frozenset[str] = AUDIO_EXTENSIONS


class CannotHoldTags(TagError):
    """An audio file whose format has no tag system (raw ADTS AAC, AC-3…)."""


@dataclass(frozen=True)
class TagState:
    genres: tuple[str, ...]  # every genre value present, () if none
    provenance: str | None  # genrefy's private field as stored, None if absent


# --- opening files --------------------------------------------------------------------------


@dataclass
class _Opened:
    audio: Any  # a mutagen FileType with .tags present
    system: TagSystem
    id3_version: int | None  # the ID3v2 minor version to save with; None for other formats

    def state(self) -> TagState:
        provenance = self.system.get(self.audio, "provenance")
        return TagState(
            tuple(self.system.get(self.audio, "genre")), provenance[0] if provenance else None
        )

    def set(self, wanted: TagState) -> None:
        self.system.set(self.audio, "genre", list(wanted.genres))
        provenance = [wanted.provenance] if wanted.provenance is not None else []
        self.system.set(self.audio, "provenance", provenance)


def _check_extension(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        raise TagError(f"unsupported file type {path.suffix or '(no extension)'!r}")
    if suffix not in TAGGABLE_EXTENSIONS:
        raise CannotHoldTags(untaggable_reason(suffix))


def _mutagen_load(loader: Callable[[], Any]) -> Any:
    try:
        return loader()
    except FileNotFoundError:
        raise TagError("file not found (moved or deleted?)") from None
    except Exception as exc:  # mutagen raises many types for unreadable files
        raise TagError(f"cannot read the tags: {short_reason(exc)}") from exc


def _open(path: Path, kind: type | None = None) -> _Opened:
    """Open ``path`` with mutagen; ``kind`` forces the class (the temp copy has no extension)."""
    kind = kind or mutagen_class(path)
    if kind is None:
        raise TagError("not an audio file mutagen recognises (unknown or damaged header)")
    audio = _mutagen_load(lambda: kind(path))
    version = None
    if isinstance(audio.tags, ID3) or (audio.tags is None and _uses_id3(audio)):
        audio, version = _open_id3(path, type(audio), audio.tags)
    if audio.tags is None:
        try:
            audio.add_tags()
        except Exception as exc:  # AAC, AC-3…: mutagen's "doesn't support tags"
            raise CannotHoldTags(f"format cannot hold tags ({type(audio).__name__})") from exc
    system = system_for(audio.tags)
    if system is not None:
        return _Opened(audio, system, version)
    raise TagError(f"unsupported tag format ({type(audio.tags).__name__})")


def _uses_id3(audio: Any) -> bool:
    return isinstance(audio, (ID3FileType, WAVE, AIFF)) or type(audio).__name__ in _OTHER_ID3


#: mutagen classes outside ID3FileType whose tag is an ID3v2 tag.
_OTHER_ID3 = ("DSF", "DSDIFF")


def _open_id3(path: Path, kind: type, tags: ID3 | None) -> tuple[Any, int]:
    """Reopen so frames stay exactly as stored, and pick the version to save with."""
    major = tags.version[1] if tags is not None and tags.version[0] == 2 else None
    reopen = isinstance(kind, type) and issubclass(kind, (ID3FileType, WAVE, AIFF))
    if not reopen:  # DSF, DSDIFF: their loaders take no ID3 options
        return _mutagen_load(lambda: kind(path)), major if major in (3, 4) else 4
    if major in (3, 4):
        # translate=False: no v2.3<->v2.4 frame conversions, which would drop
        # frames such as TSOP that iTunes writes into v2.3 tags.
        return _mutagen_load(lambda: kind(path, translate=False)), major
    if major == 2:
        return _mutagen_load(lambda: kind(path, v2_version=3)), 3  # mutagen cannot write v2.2
    return _mutagen_load(lambda: kind(path)), 4  # no ID3v2 (maybe ID3v1): new tag is v2.4


def _save(opened: _Opened) -> None:
    """Write the tags of ``opened`` into the file it was opened from."""
    if opened.id3_version is None:
        opened.audio.save()
    elif type(opened.audio).__name__ == "DSDIFF":
        opened.audio.save()  # DSDIFF.save takes no version options; it writes v2.4
    else:
        # mutagen's v1=1 default (MP3 only) updates an existing ID3v1 tag, never adds one.
        opened.audio.save(v2_version=opened.id3_version, v23_sep=None)


# --- public API -----------------------------------------------------------------------------


def read_tags(path: str | os.PathLike) -> TagState:
    """The genres and provenance of the file at ``path``; TagError if it cannot be read."""
    real, _ = resolve_target(path)
    _check_extension(Path(path))
    return _open(real).state()


def left_alone_reason(
    path: str | os.PathLike, genres: Sequence[str], hard_links: str
) -> str | None:
    """Why :func:`write_genres` would leave ``path`` unchanged on purpose, or None (dry runs).

    None also when the file cannot be looked at now: the real run reports that when it tries.
    """
    try:
        real, st = resolve_target(path)
        return _left_alone(st, size_estimated(_open(real).audio), genres, hard_links)
    except (OSError, TagError):
        return None


def _left_alone(
    st: os.stat_result, estimated: str | None, genres: Sequence[str], hard_links: str
) -> str | None:
    """The one place that decides what is left unchanged on purpose (see ``LeftAlone``)."""
    reason = left_alone(st, hard_links)
    if reason is None and estimated is not None:
        reason = id3v1_refusal(estimated, genres)
    return reason


def write_genres(
    path: str | os.PathLike,
    genres: Sequence[str],
    *,
    provenance: str | None,
    keep_mtime: bool = False,
    verify: bool = True,
    hard_links: str = "skip",
    before_replace: Callable[[Path, Path, TagState], None] | None = None,
) -> TagState:
    """Set the file's genres and provenance field; return the state from before.

    ``genres=()`` removes the genre field and ``provenance=None`` our field. A file
    that already holds exactly this state is not touched (not even its mtime). Raises TagError
    (original left unchanged) for any file that cannot be safely written, and
    ValueError for invalid arguments. ``hard_links``: see ``safe_write``.
    ``before_replace(original, copy, written)`` runs once the copy is verified, just before
    it replaces the original (the journal records the change there); ``written`` is the
    state the copy holds. An MPEG file whose length decoders estimate from its size is
    written only if it has an ID3v1 tag, and only there, without provenance
    (:mod:`genrefy_tagger.writing.id3v1`).
    """
    wanted = TagState(_check_genres(genres), _check_provenance(provenance))
    real, st = resolve_target(path)
    _check_extension(Path(path))
    opened = _open(real)
    previous = opened.state()
    estimated = size_estimated(opened.audio)
    v1_only = estimated == "id3v1"
    if v1_only:
        wanted = TagState(wanted.genres, None)  # ID3v1 has no room for provenance
    if previous == wanted:
        return previous
    reason = _left_alone(st, estimated, wanted.genres, hard_links)  # before the costly decode
    if reason:
        raise LeftAlone(reason)
    kind = type(opened.audio)
    others = opened.system.others(opened.audio) if verify else None
    fingerprint = audio_fingerprint(real) if verify else None

    def edit(tmp: Path) -> None:
        copy = _open(tmp, kind)
        copy.set(wanted)
        try:
            save_id3v1(copy.audio) if v1_only else _save(copy)
        except Exception as exc:  # mutagen's write errors, e.g. a frame it cannot render
            raise TagError(f"cannot write tags: {short_reason(exc)}") from exc

    def check(tmp: Path) -> None:
        version = None if v1_only else opened.id3_version
        _verify(tmp, kind, wanted, others, version, fingerprint)

    replace_atomically(
        real,
        st,
        edit,
        check if verify else None,
        keep_mtime=keep_mtime,
        hard_links=hard_links,
        before_replace=(
            None if before_replace is None else lambda tmp: before_replace(real, tmp, wanted)
        ),
    )
    return previous


def _verify(
    tmp: Path,
    kind: type,
    wanted: TagState,
    others: Any,
    id3_version: int | None,
    fingerprint: tuple[str, str] | None,
) -> None:
    copy = _open(tmp, kind)
    got = copy.state()
    if got.genres != wanted.genres:
        raise TagError(f"verification failed: genres read back as {list(got.genres)}")
    if got.provenance != wanted.provenance:
        raise TagError("verification failed: provenance field did not read back")
    if id3_version is not None and copy.audio.tags.version[:2] != (2, id3_version):
        raise TagError(f"verification failed: ID3 version became {copy.audio.tags.version}")
    if copy.system.others(copy.audio) != others:
        raise TagError("verification failed: other tags would have changed")
    if fingerprint is None:
        return
    try:
        after = audio_fingerprint(tmp, fingerprint[0])
    except TagError as exc:
        raise TagError(f"verification failed: {exc}") from exc
    if after != fingerprint:
        raise TagError("verification failed: decoded audio would have changed")


def _check_genres(genres: Sequence[str]) -> tuple[str, ...]:
    if isinstance(genres, str):
        raise TypeError("genres must be a sequence of strings, not one string")
    result = tuple(genres)
    for genre in result:
        if not isinstance(genre, str) or not genre.strip() or "\0" in genre:
            raise ValueError(f"invalid genre {genre!r}")
    return result


def _check_provenance(provenance: str | None) -> str | None:
    if provenance is not None and (
        not isinstance(provenance, str) or not provenance or "\0" in provenance
    ):
        raise ValueError(f"invalid provenance {provenance!r}")
    return provenance
