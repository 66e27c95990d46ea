"""Real audio files in every supported format, made on the fly for tests.

libsndfile (soundfile) writes what it can; PyAV's FFmpeg encodes the rest
(AAC and ALAC in MP4, WMA, WavPack).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: extension → (writer, soundfile format, soundfile subtype) or (writer, container, codec)
FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("soundfile", "WAV", "PCM_16"),
    "aiff": ("soundfile", "AIFF", "PCM_16"),
    "flac": ("soundfile", "FLAC", "PCM_16"),
    "ogg": ("soundfile", "OGG", "VORBIS"),
    "opus": ("soundfile", "OGG", "OPUS"),
    "mp3": ("soundfile", "MP3", "MPEG_LAYER_III"),
    "m4a": ("pyav", "mp4", "aac"),
    "alac.m4a": ("pyav", "mp4", "alac"),
    "wma": ("pyav", "asf", "wmav2"),
    "wv": ("pyav", "wv", "wavpack"),
}

#: Every kind of file the tagger supports, by the name a test can use in ``parametrize``.
ALL_KINDS = tuple(FORMATS)


def signal(
    *,
    seconds: float,
    sample_rate: int = 22050,
    channels: int = 2,
    kind: str = "music",
    seed: int = 0,
) -> np.ndarray:
    """A test signal of shape (frames, channels), float32 in [-1, 1].

    ``music``: a few harmonic tones with a beat and a little noise; ``noise``;
    ``silence``; ``clipped``: music driven far past full scale, then clipped.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    if kind == "silence":
        y = np.zeros_like(t)
    elif kind == "noise":
        y = 0.3 * rng.standard_normal(len(t))
    else:
        y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 330.0, 440.0 * 1.5))
        beat = (np.sin(2 * np.pi * 2.0 * t) > 0.95).astype(float)
        y = y * (0.6 + 0.4 * beat) + 0.02 * rng.standard_normal(len(t))
        if kind == "clipped":
            y = np.clip(8.0 * y, -1.0, 1.0)
    y = np.clip(y, -1.0, 1.0).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1) * np.linspace(1.0, 0.8, channels)[None, :]


def make_audio(
    path: str | Path,
    *,
    seconds: float = 4.0,
    sample_rate: int = 22050,
    channels: int = 2,
    kind: str = "music",
    seed: int = 0,
) -> Path:
    """Write a real audio file whose format follows ``path``'s name.

    ``song.alac.m4a`` makes ALAC in MP4; ``song.m4a`` AAC. Returns the path.
    """
    path = Path(path)
    key = "alac.m4a" if path.name.endswith(".alac.m4a") else path.suffix.lstrip(".").lower()
    writer, fmt, codec = FORMATS[key]
    data = signal(seconds=seconds, sample_rate=sample_rate, channels=channels, kind=kind, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if writer == "soundfile":
        import soundfile as sf

        rate = 48000 if codec == "OPUS" and sample_rate not in (8000, 12000, 16000, 24000) else None
        if rate:
            import soxr

            data = soxr.resample(data, sample_rate, rate).astype(np.float32)
        sf.write(str(path), data, rate or sample_rate, format=fmt, subtype=codec)
    else:
        _pyav_write(path, data, sample_rate, fmt, codec)
    return path


def _pyav_write(path: Path, data: np.ndarray, sample_rate: int, container: str, codec: str) -> None:
    import av

    layouts = {1: "mono", 2: "stereo", 6: "5.1"}
    channels = data.shape[1]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=layouts[channels])
        stream.codec_context.bit_rate = 128_000  # WMA's encoder will not open without one
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, len(data), frame_size):
            block = data[start : start + frame_size]
            frame = _frame(block, fmt, layouts[channels], sample_rate)
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _frame(block: np.ndarray, fmt: str, layout: str, sample_rate: int):
    import av

    planar = fmt.endswith("p")
    base = fmt.rstrip("p")
    if base == "flt":
        arr = block.astype(np.float32)
    elif base == "s16":
        arr = (block * 32767).astype(np.int16)
    elif base == "s32":
        arr = (block * 2147483647).astype(np.int32)
    else:  # u8
        arr = ((block + 1.0) * 127.5).astype(np.uint8)
    arr = arr.T if planar else arr.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=layout)
    frame.sample_rate = sample_rate
    return frame


# --- files as other tools make them (FFmpeg through PyAV) -----------------------------------

#: name → (container, codec, muxer options): formats beyond ALL_KINDS that FFmpeg writes.
FFMPEG_KINDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp2": ("mp2", "mp2", {}),
    "tta": ("tta", "tta", {}),
    "oga": ("ogg", "flac", {}),  # Ogg FLAC
    "aac": ("adts", "aac", {}),
    "ac3": ("ac3", "ac3", {}),
    "mka": ("matroska", "flac", {}),
    "au": ("au", "pcm_s16be", {}),
    "w64": ("w64", "pcm_s16le", {}),
    "caf": ("caf", "pcm_s16le", {}),
}


def ffmpeg_encode(
    path: str | Path,
    *,
    container: str,
    codec: str,
    seconds: float = 3.0,
    sample_rate: int = 44100,
    options: dict[str, str] | None = None,
    bit_rate: int | None = 128_000,
    vbr_quality: int | None = None,
    metadata: dict[str, str] | None = None,
    source: str | Path | None = None,
    first_pts: int | None = None,
) -> Path:
    """Encode a file the way the ``ffmpeg`` command line does, with PyAV's FFmpeg.

    ``vbr_quality`` is LAME's ``-q:a`` (a VBR MP3 with a Xing header); ``options``
    are muxer options such as ``{"id3v2_version": "0"}``; ``source`` transcodes an
    existing file (e.g. Ogg Vorbis → Opus) instead of the test signal;
    ``first_pts`` (in samples) keeps a source's start timestamp the way the ffmpeg
    command line does: a negative one (a decoder's delay) gives an Opus stream
    that libsndfile 1.2.2 calls malformed.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w", format=container, options=options or {}) as out:
        out.metadata.update(metadata or {})
        rate = 48000 if codec in ("libopus", "opus") else sample_rate
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        if vbr_quality is not None:
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = vbr_quality * 118  # FF_QP2LAMBDA
        elif bit_rate:
            stream.codec_context.bit_rate = bit_rate
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout="stereo", rate=rate)
        frame_size = stream.codec_context.frame_size or 1024
        fifo = av.AudioFifo()
        next_pts = first_pts

        def encode(block):
            nonlocal next_pts
            if next_pts is not None:
                block.pts, next_pts = next_pts, next_pts + block.samples
            for packet in stream.encode(block):
                out.mux(packet)

        for frame in _source_frames(source, seconds, sample_rate):
            for converted in resampler.resample(frame):
                converted.pts = None
                fifo.write(converted)
            for block in fifo.read_many(frame_size):
                encode(block)
        rest = fifo.read()
        if rest is not None:
            encode(rest)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _source_frames(source, seconds: float, sample_rate: int):
    import av

    if source is not None:
        with av.open(str(source)) as inp:
            for frame in inp.decode(audio=0):
                frame.pts = None
                yield frame
        return
    data = signal(seconds=seconds, sample_rate=sample_rate, channels=2)
    for start in range(0, len(data), 4096):
        yield _frame(data[start : start + 4096], "fltp", "stereo", sample_rate)
