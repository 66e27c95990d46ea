"""The format table: which file extensions are audio, and which of them can hold a genre.

Every extension here gets a row in a run. Decoding is tried with libsndfile first
and with PyAV (FFmpeg) whenever libsndfile refuses the file (``audio.py``), so any
of these that FFmpeg plays is analysed. Tags are written with mutagen where the
container has a tag system (``tags.py``); the others are analysed but their row
says the format cannot hold tags.

mutagen recognises files by content, not by name, so a FLAC file named ``.mp3``
gets Vorbis comments: the table only decides which names are looked at.
"""

from __future__ import annotations

from pathlib import Path

#: extension → (format, tag system genrefy writes; None: the format cannot hold tags)
FORMATS: dict[str, tuple[str, str | None]] = {
    ".mp3": ("MP3", "ID3v2"),
    ".mp2": ("MPEG audio layer II", "ID3v2"),
    ".flac": ("FLAC", "Vorbis comments"),
    ".ogg": ("Ogg Vorbis / Opus / FLAC / Speex", "Vorbis comments"),
    ".oga": ("Ogg Vorbis / Opus / FLAC / Speex", "Vorbis comments"),
    ".opus": ("Ogg Opus", "Vorbis comments"),
    ".spx": ("Ogg Speex", "Vorbis comments"),
    ".m4a": ("MP4 (AAC, ALAC)", "MP4 atoms"),
    ".m4b": ("MP4 audiobook", "MP4 atoms"),
    ".mp4": ("MP4", "MP4 atoms"),
    ".alac": ("MP4 (ALAC)", "MP4 atoms"),
    ".aif": ("AIFF", "ID3v2 chunk"),
    ".aiff": ("AIFF", "ID3v2 chunk"),
    ".aifc": ("AIFF-C", "ID3v2 chunk"),
    ".wav": ("WAV", "ID3v2 chunk"),
    ".dsf": ("DSD stream file", "ID3v2"),
    ".dff": ("DSDIFF", "ID3v2 chunk"),
    ".tta": ("True Audio", "ID3v2"),
    ".wma": ("Windows Media Audio", "ASF attributes"),
    ".asf": ("ASF", "ASF attributes"),
    ".wv": ("WavPack", "APEv2"),
    ".ape": ("Monkey's Audio", "APEv2"),
    ".mpc": ("Musepack", "APEv2"),
    ".mp+": ("Musepack", "APEv2"),
    ".ofr": ("OptimFROG", "APEv2"),
    ".ofs": ("OptimFROG", "APEv2"),
    ".tak": ("TAK", "APEv2"),
    # FFmpeg decodes these; mutagen has no tag writer for them (or they have no tags).
    ".aac": ("raw AAC (ADTS)", None),
    ".ac3": ("AC-3", None),
    ".eac3": ("E-AC-3", None),
    ".dts": ("DTS", None),
    ".amr": ("AMR", None),
    ".au": ("Sun AU", None),
    ".snd": ("Sun AU", None),
    ".w64": ("Sony Wave64", None),
    ".rf64": ("RF64", None),
    ".caf": ("Core Audio Format", None),
    ".mka": ("Matroska audio", None),
    ".webm": ("WebM", None),
    ".voc": ("Creative Voice", None),
    ".ra": ("RealAudio", None),
}

#: Every extension genrefy looks at (lower case, with the dot).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(FORMATS)

#: The extensions whose format can hold a genre tag.
TAGGABLE_EXTENSIONS: frozenset[str] = frozenset(e for e, (_, t) in FORMATS.items() if t)


def untaggable_reason(extension: str) -> str:
    """The row's reason for a file whose format has no tags, e.g. raw ADTS AAC."""
    name = FORMATS.get(extension.lower(), (extension or "this format", None))[0]
    return f"format cannot hold tags ({name})"


def mutagen_class(path: Path) -> type | None:
    """The mutagen class for ``path``, trusting the content over a lying extension.

    mutagen.File adds points for the extension, so a FLAC file named ``.mp3`` is
    opened as MP3 (and fails, or worse, gets an ID3 tag in front of its FLAC
    header). When the class it picks does not recognise the content at all, the
    class that does is used instead.
    """
    kinds = _mutagen_kinds()
    try:
        with open(path, "rb") as f:
            header = f.read(128)
            named = max((k.score(str(path), f, header), k.__name__, k) for k in kinds)
            content = {k: k.score("", f, header) for k in kinds}
    except OSError:
        return None
    if named[0] <= 0:
        return None
    if content[named[2]] <= 0:
        best = max((score, k.__name__, k) for k, score in content.items())
        if best[0] > 0:
            return best[2]
    return named[2]


def _mutagen_kinds() -> list[type]:
    # The classes mutagen.File chooses from, in its own order.
    from mutagen.aac import AAC
    from mutagen.ac3 import AC3
    from mutagen.aiff import AIFF
    from mutagen.apev2 import APEv2File
    from mutagen.asf import ASF
    from mutagen.dsdiff import DSDIFF
    from mutagen.dsf import DSF
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3FileType
    from mutagen.monkeysaudio import MonkeysAudio
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.musepack import Musepack
    from mutagen.oggflac import OggFLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggspeex import OggSpeex
    from mutagen.oggtheora import OggTheora
    from mutagen.oggvorbis import OggVorbis
    from mutagen.optimfrog import OptimFROG
    from mutagen.smf import SMF
    from mutagen.tak import TAK
    from mutagen.trueaudio import TrueAudio
    from mutagen.wave import WAVE
    from mutagen.wavpack import WavPack

    return (
        [MP3, TrueAudio, OggTheora, OggSpeex, OggVorbis, OggFLAC, FLAC, AIFF, APEv2File]
        + [MP4, ID3FileType, WavPack, Musepack, MonkeysAudio, OptimFROG, ASF, OggOpus, AAC, AC3]
        + [SMF, TAK, DSF, DSDIFF, WAVE]
    )
