"""What each decoder makes of a file, cheaply: the check that a tag write keeps it readable.

A tag write may keep every audio byte and still change what a decoder reads: an
``id3 `` chunk after MP3 audio in a WAV file sends libmpg123 (inside libsndfile) on
into the tag, and an ID3v2 tag in front of an MP3 with no Xing header changes the
length libsndfile estimates. So before a copy replaces a file, every decoder that
opened the file opens the copy too and must report the same stream facts.

Facts are a probe, not a decode: libsndfile's frame count, rate, channels, format
and subtype, plus the frames it returns when reading the last 4,096 (where a decoder
that runs on into a trailing tag stumbles); FFmpeg's (PyAV's) codec, rate, channels,
stream and container duration and frame count as the demuxer reports them. A decoder
that cannot open the original must not open the copy either (its error message may
change: FFmpeg's depends on where it gives up).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Frames read at the end of the file by the libsndfile probe.
_TAIL_FRAMES = 4096

Facts = dict[str, Any]


def _soundfile_facts(path: Path) -> Facts:
    import soundfile as sf

    from ..reading.audio import quiet_decoder

    with quiet_decoder(), sf.SoundFile(os.fsencode(path)) as f:
        facts = {
            "frames": f.frames,
            "rate": f.samplerate,
            "channels": f.channels,
            "codec": f"{f.format}/{f.subtype}",
        }
        if f.seekable() and f.frames > 0:
            f.seek(max(0, f.frames - _TAIL_FRAMES))
            facts["tail"] = len(f.read(_TAIL_FRAMES, dtype="int16", always_2d=True))
    return facts


def _pyav_facts(path: Path) -> Facts:
    # PCM's facts are all in its header; FFmpeg's default probe would read 5 MB of
    # samples (50 ms for a WAV) to learn nothing more. Other codecs get the default probe.
    facts = _pyav_open(path, {"probesize": "4096"})
    return facts if facts["codec"].startswith("pcm_") else _pyav_open(path, {})


def _pyav_open(path: Path, options: dict[str, str]) -> Facts:
    import av

    with av.open(str(path), metadata_errors="ignore", options=options) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        duration = stream.duration
        return {
            "codec": ctx.name,
            "rate": ctx.sample_rate,
            "channels": ctx.channels,
            "duration": None if duration is None else float(duration * stream.time_base),
            "container_duration": container.duration,
            "frames": stream.frames,
        }


_PROBES: dict[str, Callable[[Path], Facts]] = {
    "libsndfile": _soundfile_facts,
    "ffmpeg": _pyav_facts,
}


def probe(path: Path) -> dict[str, Facts | None]:
    """Each decoder's facts about ``path``; None for a decoder that cannot open it."""
    found: dict[str, Facts | None] = {}
    for name, facts in _PROBES.items():
        try:
            found[name] = facts(path)
        except Exception:  # noqa: BLE001 - decoders raise many types; all mean "cannot read"
            found[name] = None
    return found


def views(path: Path) -> dict[str, Facts | str]:
    """Like :func:`probe`, but a decoder that fails gives its first line of error (reports)."""
    found: dict[str, Facts | str] = {}
    for name, facts in _PROBES.items():
        try:
            found[name] = facts(path)
        except Exception as exc:  # noqa: BLE001 - the failure is the fact
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            found[name] = f"error: {lines[0][:160]}"
    return found


def difference(before: dict[str, Facts | None], copy: Path) -> str | None:
    """None when every decoder reads ``copy`` as it read the original, else a one-line reason.

    A decoder that could not open the original must not open the copy either: a tag
    write that makes a file readable changed more than its tags.
    """
    after = probe(copy)
    for name, facts in before.items():
        now = after.get(name)
        if facts is None and now is not None:
            return f"{name} could not read it before and would now"
        if facts is not None and now is None:
            return f"{name} could no longer read it"
        if facts is None or now is None:
            continue  # unreadable before and after
        for key, value in facts.items():
            if now.get(key) != value:
                return f"{name} would read it differently ({key} {value} -> {now.get(key)})"
    return None
