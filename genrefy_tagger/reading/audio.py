"""Decoding: any audio file → mono float32 at the model's rate.

libsndfile (through soundfile) reads WAV, AIFF, FLAC, Ogg Vorbis/Opus and MP3 fast
and seeks in them; PyAV (FFmpeg inside its wheel) reads everything else FFmpeg
plays (AAC/ALAC in MP4, WMA, WavPack, APE, Musepack, DSD, AC-3…) and takes over
whenever libsndfile refuses a file, at the probe or while decoding (libsndfile
1.2.2 opens some FFmpeg-made Opus files and then fails to decode them). PyAV
ignores undecodable tag metadata (``metadata_errors="ignore"``): a binary iTunes
freeform atom never stops the audio from being read.

Every decoder's output is mixed down by averaging channels and resampled with
soxr, so a file gives the same samples whichever path read it. ``probe``'s
duration is the container's figure (an estimate for MP3 and some others): use it
to plan, and the length of the decoded samples for anything the user is told.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class AudioError(Exception):
    """A file that cannot be decoded; the message is a one-line reason for the user."""


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds
    sample_rate: int
    channels: int
    decoder: str  # "soundfile" or "pyav"


def probe(path: str | os.PathLike) -> AudioInfo:
    """Duration (estimated), rate and channel count of a file, without decoding it."""
    path = _check_file(path)
    refused = "no audio frames"
    try:
        import soundfile as sf

        # Bytes: its binding encodes a str strictly, so a name that is not UTF-8 would fail.
        # Quiet: libmpg123 prints "error: Giving up searching valid MPEG header" for an
        # .mp3 that is really MP4, which FFmpeg then reads as any other.
        with quiet_decoder():
            info = sf.info(os.fsencode(path))
        if info.frames > 0 and info.samplerate > 0:
            return AudioInfo(
                info.frames / info.samplerate, info.samplerate, info.channels, "soundfile"
            )
    except Exception as exc:  # noqa: BLE001 - libsndfile refuses many valid formats; try FFmpeg
        refused = _short(exc, path)
    return _pyav_probe(path, refused)


def load(
    path: str | os.PathLike,
    *,
    sample_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Decode ``duration`` seconds from ``offset`` (the whole file by default).

    Returns
    -------
    y : np.ndarray [shape=(n,)], float32, mono at ``sample_rate``
    """
    info = info or probe(path)
    return _read(Path(path), info, offset, duration, sample_rate)


def load_segments(
    path: str | os.PathLike,
    starts: Sequence[float],
    *,
    seconds: float,
    sample_rate: int,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Decode only the given segments, seeking to each one.

    Returns
    -------
    segments : np.ndarray [shape=(len(starts), round(seconds * sample_rate))], float32
        A segment that runs past the end of a (truncated) file is zero-padded.
    """
    info = info or probe(path)
    length = int(round(seconds * sample_rate))
    out = np.zeros((len(starts), length), dtype=np.float32)
    if info.decoder == "soundfile":
        read = _soundfile_segments(Path(path), starts, seconds)
        if read is not None:
            chunks, native_sr = read
            for i, data in enumerate(chunks):
                y = _mono_at(data, native_sr, sample_rate)[:length]
                out[i, : len(y)] = y
            return out
    for i, start in enumerate(starts):
        y = _read(Path(path), info, start, seconds, sample_rate)[:length]
        out[i, : len(y)] = y
    return out


def _soundfile_segments(
    path: Path, starts: Sequence[float], seconds: float
) -> tuple[list[np.ndarray], int] | None:
    """Read segments through one libsndfile handle, or None when that fails.

    The same seek and read per segment as :func:`_soundfile_read`, without reopening
    the file: a fresh MP3 handle rescans the stream from its start to reach an offset
    (~7 ms per seek into a 4-minute file), an open one only from where it is.
    None leaves every failure to the per-segment path and its fallbacks.
    """
    import soundfile as sf

    try:
        with quiet_decoder(), sf.SoundFile(os.fsencode(path)) as f:
            sr = f.samplerate
            frames = int(round(seconds * sr))
            chunks = []
            for offset in starts:
                f.seek(min(int(offset * sr), max(f.frames - 1, 0)) if offset > 0 else 0)
                chunks.append(f.read(frames, dtype="float32", always_2d=True))
            return chunks, sr
    except Exception:  # noqa: BLE001 - retried segment by segment, which reports the reason
        return None


def _mono_at(data: np.ndarray, native_sr: int, sr: int) -> np.ndarray:
    """Decoded (frames, channels) → mono float32 at ``sr``, exactly as :func:`_read` does."""
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.nan_to_num(mono.astype(np.float32, copy=False))
    if native_sr != sr and len(mono):
        import soxr

        mono = soxr.resample(mono, native_sr, sr)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise AudioError("file not found (moved or deleted?)")
    if not path.is_file():
        raise AudioError("not a regular file")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")
    return path


def _read(
    path: Path, info: AudioInfo, offset: float, duration: float | None, sr: int
) -> np.ndarray:
    if info.decoder == "soundfile":
        try:
            data, native_sr = _soundfile_read(path, offset, duration)
        except AudioError as exc:  # libsndfile opened it but cannot decode it: FFmpeg may
            data, native_sr = _pyav_read(path, offset, duration, refused=str(exc))
    else:
        data, native_sr = _pyav_read(path, offset, duration)
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.nan_to_num(mono.astype(np.float32, copy=False))
    if native_sr != sr and len(mono):
        import soxr

        mono = soxr.resample(mono, native_sr, sr)
    return np.ascontiguousarray(mono, dtype=np.float32)


@contextmanager
def quiet_decoder() -> Iterator[None]:
    """Silence what C decoders print straight to file descriptor 2 meanwhile.

    libmpg123 (inside libsndfile) reports every MP3 frame it resyncs on, which would
    bury the table and progress bar; real failures still reach the user as exceptions.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _soundfile_read(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with quiet_decoder(), sf.SoundFile(os.fsencode(path)) as f:
            sr = f.samplerate
            if offset > 0:
                f.seek(min(int(offset * sr), max(f.frames - 1, 0)))
            frames = -1 if duration is None else int(round(duration * sr))
            return f.read(frames, dtype="float32", always_2d=True), sr
    except Exception as exc:  # noqa: BLE001 - libsndfile's errors are all "cannot decode"
        raise AudioError(f"libsndfile: {_short(exc, path)}") from exc


def _pyav_probe(path: Path, refused: str) -> AudioInfo:
    try:
        import av

        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream in file")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            rate = stream.codec_context.sample_rate or stream.rate
            channels = stream.codec_context.channels
            if not rate:
                raise AudioError("audio stream without a sample rate")
            return AudioInfo(duration, int(rate), int(channels or 1), "pyav")
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg's errors are all "cannot decode"
        raise AudioError(
            f"not audio that FFmpeg or libsndfile can read "
            f"(FFmpeg: {_short(exc, path)}; libsndfile: {refused})"
        ) from exc


def _pyav_read(
    path: Path, offset: float, duration: float | None, refused: str | None = None
) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate or stream.rate)
            if offset > 0:
                # Lands on the last seek point at or before ``offset``; trimmed below.
                # After a seek FFmpeg's timestamps include the encoder delay (e.g. 1105
                # samples for LAME MP3, ~1024 for AAC), so segments may start up to ~50 ms
                # late: harmless for genre, and MP3 goes through libsndfile, which is exact.
                container.seek(int(offset / stream.time_base), stream=stream, backward=True)
            resampler = av.AudioResampler(format="fltp")  # planar float, native rate and layout
            first_time, chunks, total = None, [], 0
            need = None if duration is None else int(round(duration * sr))
            for packet_frame in container.decode(stream):
                for frame in resampler.resample(packet_frame):
                    if first_time is None:
                        first_time = float(frame.time) if frame.time is not None else offset
                    chunks.append(frame.to_ndarray().T)
                    total += frame.samples
                skip = int(round(max(offset - (first_time or 0.0), 0.0) * sr))
                if need is not None and total >= skip + need:
                    break
    except Exception as exc:  # noqa: BLE001 - corrupt streams raise many FFmpeg error types
        also = f"; {refused}" if refused else ""
        raise AudioError(f"cannot decode the audio (FFmpeg: {_short(exc, path)}{also})") from exc
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), sr
    data = np.concatenate(chunks, axis=0)
    skip = int(round(max(offset - (first_time or 0.0), 0.0) * sr))
    end = None if need is None else skip + need
    return data[skip:end], sr


def _short(exc: BaseException, path: Path | None = None) -> str:
    """A decoder's complaint as a short phrase, without the path the user already sees."""
    text = (
        getattr(exc, "error_string", None)  # libsndfile's message without "Error opening …"
        or getattr(exc, "strerror", None)
        or str(exc).strip()
    )
    text = (text or "").strip().splitlines()[0] if text and text.strip() else ""
    names = [getattr(exc, n, None) for n in ("filename", "name")] + [str(path) if path else None]
    for value in names:
        if isinstance(value, str) and value:
            text = text.replace(f": '{value}'", "").replace(f"'{value}'", "the file")
            text = text.replace(value, "the file")
    text = text[:160].rstrip(" :.")
    if text.lower() in ("", "error", "unknown error"):  # says nothing: name the error type
        text = f"{type(exc).__name__} without a message"
    return text
