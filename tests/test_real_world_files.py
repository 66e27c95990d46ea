"""Files as other tools make them: iTunes atoms, FFmpeg's Opus and MP3s, lying extensions.

Each file is read, decoded, tagged, verified and untagged through the public
functions; the other tags and the decoded audio must come back unchanged. The
files are made in fixtures with PyAV (FFmpeg), mutagen and libsndfile, the way
FFmpeg, iTunes and old taggers write them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
from audiofiles import ALL_KINDS, FFMPEG_KINDS, ffmpeg_encode, make_audio
from mutagen.mp4 import MP4, AtomDataType, MP4Cover, MP4FreeForm

from genrefy_tagger.reading import audio
from genrefy_tagger.reading.formats import TAGGABLE_EXTENSIONS
from genrefy_tagger.reading.musicnn import read_track_windows
from genrefy_tagger.reading.windows import WindowPolicy, read_windows
from genrefy_tagger.writing import safe_write
from genrefy_tagger.writing.decoders import views
from genrefy_tagger.writing.journal import Journal, undo
from genrefy_tagger.writing.safe_write import LeftAlone, audio_fingerprint, remove_stale_temps
from genrefy_tagger.writing.tags import (
    CannotHoldTags,
    TagError,
    TagState,
    left_alone_reason,
    read_tags,
    write_genres,
)

PROV = "genrefy;model=test-1;confidence=0.900;genres=Rock|Pop;date=2026-01-02T03:04:05Z"
OURS = {"tcon", "txxx:genrefy", "genre", "genrefy", "©gen", "----:com.genrefy:genrefy"}
OURS |= {"wm/genre"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BINARY = b"\xfe\xff\x00\x81" + bytes(range(128, 256))  # not UTF-8


def other_tags(path: Path) -> list:
    try:
        f = mutagen.File(path)
    except mutagen.MutagenError:  # a lying extension: let the content alone decide
        f = mutagen.File(io.BytesIO(path.read_bytes()))
    items = [] if f is None or f.tags is None else list(f.tags.items())
    return sorted((str(k), repr(v)) for k, v in items if str(k).lower() not in OURS)


def decoded(path: Path) -> np.ndarray:
    """Every sample FFmpeg decodes, at the native rate and layout."""
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        return np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])


def id3v1_block(title: str = "Old Title", genre: int = 8) -> bytes:
    def field(text: str, n: int) -> bytes:
        return text.encode("latin-1")[:n].ljust(n, b"\0")

    return (
        b"TAG"
        + field(title, 30)
        + field("Old Artist", 30)
        + field("", 30)
        + b"1999"
        + (field("", 30) + bytes([genre]))
    )


def itunes_m4a(path: Path) -> Path:
    """AAC in MP4 with the atoms iTunes writes, incl. booleans and a binary freeform atom."""
    make_audio(path, seconds=2.0)
    f = MP4(path)
    f.tags.update({"©nam": ["Song"], "©ART": ["Artist"], "cpil": True, "pgap": False})
    f.tags.update({"tmpo": [120], "rtng": [0], "disk": [(1, 2)], "trkn": [(3, 10)]})
    f.tags["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]
    f.tags["----:com.apple.iTunes:iTunSMPB"] = [MP4FreeForm(b" 00000000 00000840 000001C0")]
    f.tags["----:com.apple.iTunes:iTunNORM"] = [MP4FreeForm(b" 0000021A 0000021A")]
    # Declared UTF-8 but holding binary, as some rippers write: PyAV's strict
    # metadata decoding failed on it before.
    f.tags["----:com.apple.iTunes:CDDB"] = [MP4FreeForm(BINARY, AtomDataType.UTF8)]
    f.save()
    return path


def mp3(path: Path, **kw) -> Path:
    return ffmpeg_encode(path, container="mp3", codec="libmp3lame", **kw)


MAKERS = {
    "itunes.m4a": itunes_m4a,
    "vbr-no-id3v2.mp3": lambda p: mp3(p, vbr_quality=2, options={"id3v2_version": "0"}),
    "vbr-ffmpeg-id3v2.mp3": lambda p: mp3(p, vbr_quality=4, metadata={"title": "T"}),
    "cbr-no-xing-no-id3.mp3": lambda p: mp3(p, options={"id3v2_version": "0", "write_xing": "0"}),
    "id3v1-only.mp3": lambda p: _append(mp3(p, options={"id3v2_version": "0"}), id3v1_block()),
    "ffmpeg-from-vorbis.opus": lambda p: ffmpeg_encode(
        p,
        container="ogg",
        codec="libopus",
        metadata={"title": "From Vorbis"},
        source=make_audio(p.with_name("source.ogg"), seconds=3.0),
    ),
    "ffmpeg-negative-start.opus": lambda p: ffmpeg_encode(
        p,
        container="ogg",
        codec="libopus",
        source=make_audio(p.with_name("source.ogg"), seconds=3.0),
        first_pts=-312,
    ),
    "flac-named.mp3": lambda p: _rename(make_audio(p.with_suffix(".flac"), seconds=1.5), p),
    "mp3-named.m4a": lambda p: _rename(mp3(p.with_suffix(".mp3")), p),
    "itunes-named.mp3": lambda p: _rename(itunes_m4a(p.with_suffix(".m4a")), p),
    **{
        f"ffmpeg.{ext}": (
            lambda c, k, o: lambda p: ffmpeg_encode(p, container=c, codec=k, options=o)
        )(*spec)
        for ext, spec in FFMPEG_KINDS.items()
    },
}


def _append(path: Path, data: bytes) -> Path:
    with open(path, "ab") as f:
        f.write(data)
    return path


def _rename(src: Path, dst: Path) -> Path:
    src.rename(dst)
    return dst


#: MPEG audio with no Xing header and no tag: decoders estimate its length from the file
#: size, so any tag would change what they read; genrefy leaves it alone (see writing/id3v1).
SIZE_ESTIMATED = ("cbr-no-xing-no-id3.mp3", "ffmpeg.mp2")
TAGGABLE = sorted(
    k for k in MAKERS if Path(k).suffix in TAGGABLE_EXTENSIONS and k not in SIZE_ESTIMATED
)
UNTAGGABLE = sorted(k for k in MAKERS if Path(k).suffix not in TAGGABLE_EXTENSIONS)


@pytest.mark.parametrize("name", TAGGABLE)
def test_tag_and_undo_keep_audio_and_other_tags(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    tags_before, audio_before = other_tags(path), decoded(path)
    assert len(audio.load(path, sample_rate=16000)) > 16000  # the analysis can decode it

    previous = write_genres(path, ["Rock", "Pop"], provenance=PROV)
    assert read_tags(path) == TagState(("Rock", "Pop"), PROV)
    assert other_tags(path) == tags_before
    np.testing.assert_array_equal(decoded(path), audio_before)

    write_genres(path, previous.genres, provenance=previous.provenance)  # what --undo does
    assert read_tags(path) == previous
    assert other_tags(path) == tags_before
    np.testing.assert_array_equal(decoded(path), audio_before)
    assert [p.name for p in tmp_path.iterdir() if ".genrefy-" in p.name] == []


@pytest.mark.parametrize("name", SIZE_ESTIMATED)
def test_size_estimated_mpeg_without_a_tag_is_left_alone(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    reason = r"^no tag and no length header: any tag would change the length decoders estimate"
    assert re.match(reason, left_alone_reason(path, ["Rock"], "skip"))  # what a dry run says
    with pytest.raises(LeftAlone, match=reason):
        write_genres(path, ["Rock"], provenance=PROV)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert [p.name for p in tmp_path.iterdir() if ".genrefy-" in p.name] == []


@pytest.mark.parametrize("name", SIZE_ESTIMATED)
def test_size_estimated_mpeg_with_id3v1_gets_its_genre_there_only(tmp_path, name):
    path = _append(MAKERS[name](tmp_path / name), id3v1_block(genre=255))
    size, views_before = path.stat().st_size, views(path)
    original, audio_before = path.read_bytes(), decoded(path)
    journal_path = tmp_path / "journal.jsonl"
    with Journal(journal_path) as journal:
        record = journal.recorder(path, read_tags(path), TagState(("Jazz",), PROV), model="m")
        write_genres(path, ["Jazz"], provenance=PROV, before_replace=record)
    assert read_tags(path) == TagState(("Jazz",), None)  # ID3v1 has no room for provenance
    assert path.stat().st_size == size and path.read_bytes()[:3] != b"ID3"
    now = path.read_bytes()
    changed = [i for i, (a, b) in enumerate(zip(original, now, strict=True)) if a != b]
    assert changed == [size - 1]  # the genre byte, nothing else
    assert views(path) == views_before  # every decoder's facts, estimates included
    np.testing.assert_array_equal(decoded(path), audio_before)
    with pytest.raises(LeftAlone, match="ID3v1 holds one genre, not 2"):
        write_genres(path, ["Jazz", "Blues"], provenance=PROV)
    assert [r.action for r in undo(journal_path)] == ["restored"]
    assert path.read_bytes() == original


def test_itunes_undo_removes_the_genre_atom(tmp_path):
    path = itunes_m4a(tmp_path / "a.m4a")
    write_genres(path, ["Rock"], provenance=PROV)
    write_genres(path, [], provenance=None)
    keys = MP4(path).tags.keys()
    assert "©gen" not in keys and "----:com.genrefy:genrefy" not in keys
    assert b"\xa9gen" not in path.read_bytes() and b"com.genrefy" not in path.read_bytes()
    assert MP4(path).tags["cpil"] is True and MP4(path).tags["pgap"] is False


def test_binary_freeform_atom_does_not_block_decoding(tmp_path):
    path = itunes_m4a(tmp_path / "a.m4a")
    info = audio.probe(path)
    y = audio.load(path, sample_rate=16000, info=info)
    assert info.decoder == "pyav" and abs(len(y) / 16000 - 2.0) < 0.1


@pytest.mark.parametrize("name", UNTAGGABLE)
def test_formats_without_tags_are_decoded_and_say_why(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    assert len(audio.load(path, sample_rate=16000)) > 16000
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for call in (lambda: read_tags(path), lambda: write_genres(path, ["Rock"], provenance=None)):
        with pytest.raises(CannotHoldTags, match=r"^format cannot hold tags \(.+\)$"):
            call()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_an_mp4_named_mp3_is_read_without_decoder_noise(tmp_path, capfd):
    # libmpg123 prints "error: Giving up searching valid MPEG header" straight to fd 2
    # when libsndfile probes such a file; the user must not see a decoder's complaint
    # about a file that FFmpeg then reads fine.
    path = MAKERS["itunes-named.mp3"](tmp_path / "a.mp3")
    capfd.readouterr()
    info = audio.probe(path)
    y = audio.load(path, sample_rate=16000, info=info)
    out, err = capfd.readouterr()
    assert info.decoder == "pyav" and abs(len(y) / 16000 - 2.0) < 0.1
    assert (out, err) == ("", "")


def test_opus_that_libsndfile_calls_malformed_is_decoded_by_ffmpeg(tmp_path):
    import soundfile as sf

    path = MAKERS["ffmpeg-negative-start.opus"](tmp_path / "a.opus")
    with pytest.raises(sf.LibsndfileError, match="malformed"):
        sf.read(str(path))  # the failure the issue saw
    y = audio.load(path, sample_rate=16000)
    assert abs(len(y) / 16000 - 3.0) < 0.1 and np.abs(y).max() > 0.01


def test_decoding_falls_back_to_ffmpeg_when_libsndfile_fails_mid_decode(tmp_path):
    # A probe that chose libsndfile for a file it cannot decode (libsndfile 1.2.2
    # does this with some FFmpeg-made Opus files) must still decode through PyAV.
    path = make_audio(tmp_path / "a.m4a", seconds=2.0)
    stale = audio.AudioInfo(2.0, 22050, 2, "soundfile")
    y = audio.load(path, sample_rate=16000, info=stale)
    assert abs(len(y) / 16000 - 2.0) < 0.1
    segments = audio.load_segments(path, [0.5], seconds=1.0, sample_rate=16000, info=stale)
    assert np.abs(segments).max() > 0.01


def test_unreadable_file_reason_names_both_decoders_and_not_the_path(tmp_path):
    path = tmp_path / "noise.m4a"
    path.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(audio.AudioError) as info:
        audio.probe(path)
    text = str(info.value)
    assert "FFmpeg" in text and "libsndfile" in text and str(tmp_path) not in text
    assert "(error)" not in text


def test_short_file_duration_comes_from_the_decoded_samples(tmp_path):
    from genrefy_tagger.reading.config import FeatureConfig

    # CBR frames without a Xing header that start at 32 kbit/s and go on at 320:
    # libsndfile estimates the length from the first frame, ~9 s for a 1.07-s file.
    cbr = {"id3v2_version": "0", "write_xing": "0"}
    low = mp3(tmp_path / "low.mp3", seconds=0.2, bit_rate=32_000, options=cbr)
    high = mp3(tmp_path / "high.mp3", seconds=0.87, bit_rate=320_000, options=cbr)
    path = tmp_path / "short.mp3"
    path.write_bytes(low.read_bytes() + high.read_bytes())
    assert audio.probe(path).duration > 5.0  # the estimate the old message showed
    windows = read_windows(path, config=FeatureConfig(), policy=WindowPolicy())
    assert len(windows.samples) == 0 and 1.0 < windows.duration < 1.25
    segments, _, duration, _ = read_track_windows(path, policy=WindowPolicy())  # musicnn's path
    assert len(segments) == 0 and 1.0 < duration < 1.25


# --- fingerprints ---------------------------------------------------------------------------

FINGERPRINT_CASES = list(ALL_KINDS) + [k for k in TAGGABLE if k.endswith(".mp3")]


@pytest.mark.parametrize("name", FINGERPRINT_CASES)
def test_fingerprint_is_deterministic_and_sees_payload_changes(tmp_path, name):
    if name in MAKERS:
        path = MAKERS[name](tmp_path / name)
    else:
        path = make_audio(tmp_path / f"a.{name}", seconds=2.0)
    first = audio_fingerprint(path)
    assert audio_fingerprint(path) == first == audio_fingerprint(path, first[0])
    if first[0] in ("pyav", "soundfile"):
        return  # decoded fingerprints: the damage test in test_tags covers them
    data = bytearray(path.read_bytes())
    at = len(data) * 6 // 10  # inside the audio in every format here
    data[at : at + 16] = bytes(b ^ 0x5A for b in data[at : at + 16])
    path.write_bytes(bytes(data))
    assert audio_fingerprint(path, first[0]) != first


def test_mp3_without_id3v2_keeps_its_fingerprint_when_a_tag_is_added(tmp_path):
    path = MAKERS["vbr-no-id3v2.mp3"](tmp_path / "a.mp3")
    before = audio_fingerprint(path)
    write_genres(path, ["Rock"], provenance=PROV)
    assert path.read_bytes().startswith(b"ID3") and audio_fingerprint(path) == before


# --- crashes and full disks -----------------------------------------------------------------

KILLED_WRITER = """
import sys, time
from pathlib import Path
from genrefy_tagger.writing import tags
real = tags._save
def slow(opened):
    real(opened)
    Path(sys.argv[2]).write_text("ready")
    time.sleep(60)
tags._save = slow
tags.write_genres(sys.argv[1], ["Rock"], provenance=None)
"""


def test_kill_9_mid_write_leaves_original_whole_and_next_run_cleans_up(tmp_path):
    path = make_audio(tmp_path / "a.flac", seconds=1.0)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    ready = tmp_path / "ready"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), "the writer never reached the edited copy"
    finally:
        proc.kill()  # SIGKILL: no cleanup handler runs
        proc.wait()
    temps = [p for p in tmp_path.iterdir() if ".genrefy-" in p.name]
    assert len(temps) == 1 and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    (tmp_path / ".unrelated.tmp").write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == temps
    assert not temps[0].exists() and (tmp_path / ".unrelated.tmp").exists()
    write_genres(path, ["Rock"], provenance=None)  # and the file is still fine to tag


def test_temp_copies_of_a_live_process_are_kept(tmp_path):
    mine = tmp_path / f".a.flac.genrefy-{os.getpid()}-abc.tmp"
    mine.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [] and mine.exists()


def test_full_disk_mid_copy_fails_that_file_and_keeps_the_original(tmp_path, monkeypatch):
    path = make_audio(tmp_path / "a.mp3", seconds=1.0)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def full_disk(fin, fout, length=0):
        fout.write(fin.read(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # The only fake here: no real tiny file system is available to fill up.
    monkeypatch.setattr(safe_write.shutil, "copyfileobj", full_disk)
    with pytest.raises(TagError, match="^disk full"):
        write_genres(path, ["Rock"], provenance=None)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert [p.name for p in tmp_path.iterdir() if ".genrefy-" in p.name] == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_beets_reads_the_genres_genrefy_writes(tmp_path, kind):
    from mediafile import MediaFile

    # FFmpeg estimates a 1-s WMA's duration from its size: a tag would change it (refused).
    path = make_audio(tmp_path / f"a.{kind}", seconds=4.0 if kind == "wma" else 1.0)
    write_genres(path, ["Rock", "Pop"], provenance=PROV)
    assert MediaFile(str(path)).genres == ["Rock", "Pop"]


@pytest.mark.parametrize(
    ("kind", "marker", "skip"),
    [
        ("m4a", b"stco", 12),  # first chunk offset: the decoder would read the wrong bytes
        ("opus", b"OpusHead", 12),  # the identification header's input sample rate
        ("ogg", b"\x01vorbis", 12),  # the identification header's sample rate
        ("flac", b"fLaC", 18),  # STREAMINFO: sample rate and channels
    ],
)
def test_fingerprint_sees_changes_to_what_the_decoder_reads_outside_the_frames(
    tmp_path, kind, marker, skip
):
    path = make_audio(tmp_path / f"a.{kind}", seconds=1.0)
    first = audio_fingerprint(path)
    data = bytearray(path.read_bytes())
    at = data.index(marker) + skip
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    assert first[0] not in ("pyav", "soundfile")
    try:
        assert audio_fingerprint(path, first[0]) != first
    except TagError as exc:  # also a failed verification: the layout no longer parses
        assert "no longer laid out" in str(exc)
