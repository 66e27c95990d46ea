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
