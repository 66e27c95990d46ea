"""Tag writing on real files in every format, checked with mutagen directly.

The only fakes are deliberate fault injections that replace ``tags._save`` (the
step that writes tags into the temporary copy) to prove that a failure at that
point, or a write that would change something it must not, leaves the original
byte-identical.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from audiofiles import ALL_KINDS, make_audio
from mutagen.apev2 import APEv2
from mutagen.asf import ASFByteArrayAttribute, ASFTags
from mutagen.flac import Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TIT2, TPE1, TRCK, TSOP, TXXX, TYER
from mutagen.mp4 import MP4Cover, MP4Tags

from genrefy_tagger.writing import tags
from genrefy_tagger.writing.tags import (
    SUPPORTED_EXTENSIONS,
    TagError,
    TagState,
    format_provenance,
    parse_provenance,
    read_tags,
    write_genres,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary payload, not a valid image
PROV = "genrefy;model=test-1;confidence=0.900;genres=Rock|Pop;date=2026-01-02T03:04:05Z"
OUR_KEYS = {"tcon", "txxx:genrefy", "genre", "genrefy", "©gen", "----:com.genrefy:genrefy"}
OUR_KEYS |= {"wm/genre"}


# --- helpers that read files with mutagen and the decoders directly --------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".genrefy-" in p.name]


def raw_field(path: Path, field: str) -> list[str]:
    """Genre (``field="genre"``) or provenance values, read by mutagen alone."""
    t = mutagen.File(path).tags
    if t is None:
        return []
    if isinstance(t, ID3):
        frame = t.get("TCON" if field == "genre" else "TXXX:GENREFY")
        return list(frame.text) if frame else []
    if isinstance(t, MP4Tags):
        key = "©gen" if field == "genre" else "----:com.genrefy:genrefy"
        return [v.decode() if isinstance(v, bytes) else v for v in t.get(key, [])]
    if isinstance(t, ASFTags):
        key = "WM/Genre" if field == "genre" else "genrefy"
        return [a.value for a in t[key]] if key in t else []
    if isinstance(t, APEv2):
        key = "Genre" if field == "genre" else "Genrefy"
        return list(t[key]) if key in t else []
    return list(t.get("GENRE" if field == "genre" else "GENREFY", []))


def other_tags(path: Path) -> list:
    """Every tag except ours, as mutagen shows it (pictures as bytes)."""
    f = mutagen.File(path)
    items = [] if f.tags is None else list(f.tags.items())
    snapshot = sorted((str(k), repr(v)) for k, v in items if str(k).lower() not in OUR_KEYS)
    return snapshot + [("picture", p.data) for p in getattr(f, "pictures", [])]


def decode(path: Path) -> np.ndarray:
    """Samples at the native rate: libsndfile, else FFmpeg (PyAV)."""
    try:
        return sf.read(str(path), dtype="float64", always_2d=True)[0]
    except sf.LibsndfileError:
        import av

        with av.open(str(path)) as c:
            return np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])


def add_unrelated_tags(path: Path) -> None:
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    t = f.tags
    if isinstance(t, ID3):
        t.add(TIT2(encoding=3, text="Título ñ"))
        t.add(TPE1(encoding=3, text=["Artist A", "Artist B"]))
        t.add(TALB(encoding=3, text="The Album"))
        t.add(TRCK(encoding=3, text="3/12"))
        t.add(COMM(encoding=3, lang="eng", desc="", text="a comment"))
        t.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG))
    elif isinstance(t, MP4Tags):
        t.update({"©nam": ["Título ñ"], "©ART": ["Artist"], "©alb": ["The Album"]})
        t.update({"trkn": [(3, 12)], "©cmt": ["a comment"]})
        t["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]
    elif isinstance(t, ASFTags):
        t.update({"Title": ["Título ñ"], "Author": ["Artist"], "WM/AlbumTitle": ["The Album"]})
        t.update({"WM/TrackNumber": ["3"], "Description": ["a comment"]})
        t["WM/Picture"] = [ASFByteArrayAttribute(PNG)]
    elif isinstance(t, APEv2):
        t.update({"Title": "Título ñ", "Artist": "Artist", "Album": "The Album"})
        t.update({"Track": "3/12", "Comment": "a comment", "Cover Art (Front)": b"c.png\0" + PNG})
    else:
        t.update({"TITLE": "Título ñ", "ARTIST": ["A", "B"], "ALBUM": "The Album"})
        t.update({"TRACKNUMBER": "3", "COMMENT": "a comment"})
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/png", PNG * 64  # spans several Ogg pages
        if hasattr(f, "add_picture"):
            f.add_picture(pic)
        else:
            t["METADATA_BLOCK_PICTURE"] = base64.b64encode(pic.write()).decode("ascii")
    f.save()


#: FFmpeg estimates a WMA shorter than a few seconds from its size, so a longer tag
#: changes the duration it reports and the write is (rightly) refused; real tracks are longer.
WMA_SECONDS = 4.0


@pytest.fixture
def song(tmp_path: Path):
    def make(kind: str, name: str = "song", **kwargs) -> Path:
        seconds = kwargs.pop("seconds", WMA_SECONDS if kind == "wma" else 1.0)
        return make_audio(tmp_path / f"{name}.{kind}", seconds=seconds, **kwargs)

    return make


# --- every format -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_write_two_genres_to_untagged_file(song, kind):
    path = song(kind)
    previous = write_genres(path, ["Rock", "Pop"], provenance=PROV)
    assert previous == TagState((), None)
    assert raw_field(path, "genre") == ["Rock", "Pop"]
    assert raw_field(path, "provenance") == [PROV]
    assert read_tags(path) == TagState(("Rock", "Pop"), PROV)
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_other_tags_and_audio_survive(song, kind):
    path = song(kind)
    add_unrelated_tags(path)
    before_tags, before_audio = other_tags(path), decode(path)
    assert len(before_tags) >= 5

    write_genres(path, ["Jazz"], provenance=PROV)
    assert raw_field(path, "genre") == ["Jazz"]
    assert other_tags(path) == before_tags
    np.testing.assert_array_equal(decode(path), before_audio)

    previous = write_genres(path, ["Blues", "Rock"], provenance=None)
    assert previous == TagState(("Jazz",), PROV)
    assert raw_field(path, "provenance") == []
    assert other_tags(path) == before_tags
    np.testing.assert_array_equal(decode(path), before_audio)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_remove_genres_and_provenance(song, kind):
    path = song(kind)
    add_unrelated_tags(path)
    write_genres(path, ["Rock", "Pop"], provenance=PROV)
    before = other_tags(path)
    assert write_genres(path, (), provenance=None) == TagState(("Rock", "Pop"), PROV)
    assert raw_field(path, "genre") == [] and raw_field(path, "provenance") == []
    assert read_tags(path) == TagState((), None)
    assert other_tags(path) == before


def test_supported_extensions_cover_every_test_format():
    assert {"." + kind.rsplit(".", 1)[-1] for kind in ALL_KINDS} <= SUPPORTED_EXTENSIONS
    assert ".aac" in SUPPORTED_EXTENSIONS  # analysed, but the row says it cannot hold tags


def test_unchanged_state_does_not_rewrite(song):
    path = song("flac")
    write_genres(path, ["Rock"], provenance=PROV)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    digest = sha256(path)
    assert write_genres(path, ["Rock"], provenance=PROV) == TagState(("Rock",), PROV)
    assert sha256(path) == digest and path.stat().st_mtime == 1_000_000_000


def test_invalid_arguments_are_refused(song):
    path = song("flac")
    with pytest.raises(TypeError):
        write_genres(path, "Rock", provenance=None)
    for bad in ([""], ["  "], ["a\0b"]):
        with pytest.raises(ValueError):
            write_genres(path, bad, provenance=None)
    with pytest.raises(ValueError):
        write_genres(path, ["Rock"], provenance="")


# --- provenance -----------------------------------------------------------------------------


def test_provenance_format_and_parse():
    when = datetime(2026, 11, 25, 16, 40, tzinfo=timezone.utc)
    text = format_provenance("gtzan-cnn v2", 0.8734, ["Rock", "Pop"], when)
    expected = "genrefy;model=gtzan-cnn v2;confidence=0.873;genres=Rock|Pop;"
    assert text == expected + "date=2026-11-25T16:40:00Z"
    assert parse_provenance(text) == {
        "model": "gtzan-cnn v2",
        "confidence": "0.873",
        "genres": "Rock|Pop",
        "date": "2026-11-25T16:40:00Z",
    }


def test_provenance_escapes_separators():
    text = format_provenance("a;b=c%d\nx", 1.0, ["R&B", "Hip;Hop"])
    assert "\n" not in text and text.count(";") == 4
    fields = parse_provenance(text)
    assert fields["model"] == "a;b=c%d\nx"
    assert fields["genres"] == "R&B|Hip;Hop"


@pytest.mark.parametrize("garbage", ["", "hello", "Rock", "genrefyx;model=a", ";;;", "=", None, 3])
def test_parse_provenance_tolerates_garbage(garbage):
    assert parse_provenance(garbage) == {}


def test_provenance_round_trips_through_every_format(song):
    text = format_provenance("m;odel", 0.5, ["Rock|Metal", "Pop"])
    for kind in ("mp3", "ogg", "m4a", "wma", "wv"):
        path = song(kind)
        write_genres(path, ["Rock|Metal", "Pop"], provenance=text)
        assert read_tags(path).provenance == text
        assert parse_provenance(read_tags(path).provenance)["model"] == "m;odel"


# --- ID3 versions, ID3v1, existing genres ---------------------------------------------------


def save_id3(path: Path, frames: list, version: int, v1: int = 0) -> None:
    t = ID3()
    for frame in frames:
        t.add(frame)
    f = mutagen.File(path)
    if f.tags is None:
        f.add_tags()
    f.tags.update(t)
    kwargs = {"v1": v1} if path.suffix == ".mp3" else {}
    f.save(v2_version=version, v23_sep=None, **kwargs)


@pytest.mark.parametrize("kind", ["mp3", "wav", "aiff"])
def test_id3v23_stays_v23_and_keeps_v23_frames(song, kind):
    path = song(kind)
    # TSOP is v2.4-only but iTunes writes it into v2.3: it must survive.
    frames = [TIT2(encoding=1, text="T"), TYER(encoding=1, text="1999")]
    frames += [TSOP(encoding=1, text="Sort"), TCON(encoding=1, text="(17)(13)")]
    save_id3(path, frames, version=3)
    assert mutagen.File(path).tags.version == (2, 3, 0)
    assert read_tags(path).genres == ("Rock", "Pop")

    write_genres(path, ["Jazz", "Blues"], provenance=PROV)
    raw = type(mutagen.File(path))(path, translate=False).tags  # frames exactly as stored
    assert raw.version == (2, 3, 0)
    assert raw["TCON"].text == ["Jazz", "Blues"]
    assert "TYER" in raw and raw["TSOP"].text == ["Sort"]
    assert read_tags(path) == TagState(("Jazz", "Blues"), PROV)


@pytest.mark.parametrize("kind", ["mp3", "wav", "aiff"])
def test_id3v24_stays_v24_and_no_tag_gets_v24(song, kind):
    fresh, v24 = song(kind, "fresh"), song(kind, "v24")
    save_id3(v24, [TIT2(encoding=3, text="T")], version=4)
    for path in (fresh, v24):
        write_genres(path, ["Rock"], provenance=None)
        assert mutagen.File(path).tags.version == (2, 4, 0)


def id3v1_block(genre: int) -> bytes:
    def field(text: str, size: int) -> bytes:
        return text.encode("latin-1").ljust(size, b"\0")

    body = field("Old Title", 30) + field("Old Artist", 30) + field("Old Album", 30) + b"1987"
    return b"TAG" + body + field("comment", 28) + b"\0\x05" + bytes([genre])


def test_id3v1_only_mp3_gets_v24_and_v1_is_updated(song):
    path = song("mp3")
    with open(path, "ab") as f:
        f.write(id3v1_block(genre=8))  # 8 = Jazz
    assert read_tags(path) == TagState(("Jazz",), None)

    assert write_genres(path, ["Rock", "Pop"], provenance=PROV).genres == ("Jazz",)
    tail = path.read_bytes()[-128:]
    assert tail.startswith(b"TAG") and tail[3:12] == b"Old Title"
    assert tail[127] == 17  # ID3v1 holds one genre: the first, Rock
    t = ID3(path)
    assert t.version == (2, 4, 0) and t["TIT2"].text == ["Old Title"]
    assert t["TCON"].text == ["Rock", "Pop"]


def test_id3v1_beside_v23_is_updated_not_duplicated(song):
    path = song("mp3")
    save_id3(path, [TIT2(encoding=1, text="Title"), TCON(encoding=1, text="Jazz")], 3, v1=2)
    size = path.stat().st_size
    write_genres(path, ["Rock"], provenance=None)
    data = path.read_bytes()
    assert data[-128:-125] == b"TAG" and data[-128 - 128 : -128 - 125] != b"TAG"
    assert data[-1] == 17 and data[:4] == b"ID3\x03"
    assert abs(path.stat().st_size - size) < 4096


def test_id3v22_is_rewritten_as_v23(song):
    path = song("mp3")

    def frame(name: bytes, text: str) -> bytes:
        body = b"\0" + text.encode("latin-1")
        return name + len(body).to_bytes(3, "big") + body

    frames = frame(b"TT2", "Old Title") + frame(b"TCO", "(8)")
    header = b"ID3\x02\x00\x00" + bytes([0, 0, len(frames) >> 7, len(frames) & 0x7F])
    path.write_bytes(header + frames + path.read_bytes())
    assert mutagen.File(path).tags.version == (2, 2, 0)
    assert read_tags(path).genres == ("Jazz",)

    write_genres(path, ["Rock"], provenance=None)  # mutagen cannot write v2.2
    tags_now = ID3(path)
    assert tags_now.version == (2, 3, 0) and tags_now["TIT2"].text == ["Old Title"]
    assert tags_now["TCON"].text == ["Rock"]


def test_mp3_with_several_genres(song):
    path = song("mp3")
    save_id3(path, [TCON(encoding=3, text=["Rock", "Pop", "Hip-Hop/Rap"])], version=4)
    assert read_tags(path).genres == ("Rock", "Pop", "Hip-Hop/Rap")
    previous = write_genres(path, ["Blues"], provenance=PROV)
    assert previous.genres == ("Rock", "Pop", "Hip-Hop/Rap")
    assert ID3(path)["TCON"].text == ["Blues"]


def test_other_txxx_frames_are_not_ours(song):
    path = song("mp3")
    save_id3(path, [TXXX(encoding=3, desc="genrefy_other", text="keep")], version=4)
    write_genres(path, ["Rock"], provenance=PROV)
    write_genres(path, (), provenance=None)
    assert ID3(path)["TXXX:genrefy_other"].text == ["keep"]


# --- failures leave the original alone -------------------------------------------------------


def inject(monkeypatch, fault) -> list[Path]:
    """Replace the save-into-the-copy step; record which files it was handed."""
    seen: list[Path] = []
    real_save = tags._save

    def faulty(opened):
        seen.append(Path(opened.audio.filename))
        fault(opened, real_save)

    monkeypatch.setattr(tags, "_save", faulty)
    return seen


@pytest.mark.parametrize("kind", ["mp3", "flac", "m4a", "wv"])
def test_failure_mid_write_leaves_original_identical(song, monkeypatch, kind):
    path = song(kind)
    add_unrelated_tags(path)
    digest = sha256(path)

    def garbage_then_crash(opened, real_save):
        with open(opened.audio.filename, "r+b") as f:
            f.write(b"\xde\xad\xbe\xef" * 256)
        raise OSError(28, "No space left on device")

    seen = inject(monkeypatch, garbage_then_crash)
    with pytest.raises(TagError, match="No space left on device"):
        write_genres(path, ["Rock"], provenance=PROV)
    assert sha256(path) == digest
    assert leftovers(path.parent) == []
    temp = seen[0]  # hidden, beside the original
    assert temp.parent == path.parent and temp.name.startswith(f".{path.name}.genrefy-")
    assert temp.name.endswith(".tmp")


def test_interrupt_mid_write_removes_temp(song, monkeypatch):
    path = song("ogg")
    digest = sha256(path)

    def interrupt(opened, real_save):
        real_save(opened)
        raise KeyboardInterrupt

    inject(monkeypatch, interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_genres(path, ["Rock"], provenance=None)
    assert sha256(path) == digest and leftovers(path.parent) == []


def set_title(t, title: str) -> None:
    if isinstance(t, ID3):
        t.add(TIT2(encoding=3, text=title))
    else:
        key = {MP4Tags: "©nam", ASFTags: "Title", APEv2: "Title"}.get(type(t), "TITLE")
        t[key] = [title]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_verification_catches_a_changed_other_tag(song, monkeypatch, kind):
    path = song(kind)
    add_unrelated_tags(path)
    digest = sha256(path)

    def also_change_title(opened, real_save):
        set_title(opened.audio.tags, "changed")
        real_save(opened)

    inject(monkeypatch, also_change_title)
    with pytest.raises(TagError, match="verification failed: other tags"):
        write_genres(path, ["Rock"], provenance=None)
    assert sha256(path) == digest and leftovers(path.parent) == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_verification_catches_changed_audio(song, monkeypatch, kind):
    path = song(kind, seconds=1.0)  # a 4-s WMA has packet padding at 60 %
    digest = sha256(path)

    def also_damage_audio(opened, real_save):
        real_save(opened)
        size = Path(opened.audio.filename).stat().st_size
        with open(opened.audio.filename, "r+b") as f:
            f.seek(size * 6 // 10)  # inside the audio payload in every format here
            f.write(b"\x55" * 64)

    inject(monkeypatch, also_damage_audio)
    with pytest.raises(TagError, match="verification failed"):
        write_genres(path, ["Rock"], provenance=None)
    assert sha256(path) == digest and leftovers(path.parent) == []


def test_concurrent_change_is_not_overwritten(song, monkeypatch):
    path = song("flac")

    def someone_else_writes(opened, real_save):
        real_save(opened)
        with open(path, "ab") as f:
            f.write(b"x")

    inject(monkeypatch, someone_else_writes)
    with pytest.raises(TagError, match="changed while"):
        write_genres(path, ["Rock"], provenance=None)
    assert path.read_bytes().endswith(b"x")  # the other writer's change stays
    assert read_tags(path).genres == () and leftovers(path.parent) == []


def test_read_only_file_is_left_alone(song):
    path = song("mp3")
    path.chmod(0o444)
    digest, mtime = sha256(path), path.stat().st_mtime_ns
    with pytest.raises(TagError, match="read-only file, left unchanged"):
        write_genres(path, ["Rock"], provenance=PROV)
    assert sha256(path) == digest and path.stat().st_mtime_ns == mtime
    assert read_tags(path) == TagState((), None)  # reading is fine


def test_folder_without_write_permission(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="genrefy-test-"))
    try:
        path = make_audio(folder / "song.wav", seconds=0.5)
        path.chmod(0o666)
        folder.chmod(0o555 if os.geteuid() else 0o755)
        digest = sha256(path)
        read_tags(path)  # loads mutagen's format modules before dropping privileges
        if os.geteuid() == 0:
            # Root ignores permission bits: act as "nobody" in a folder owned by root.
            os.seteuid(65534)
        try:
            with pytest.raises(TagError, match="cannot create a temporary copy"):
                write_genres(path, ["Rock"], provenance=None)
        finally:
            if os.getuid() == 0:
                os.seteuid(0)
        assert sha256(path) == digest and leftovers(folder) == []
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_vanished_file(song):
    path = song("flac")
    path.unlink()
    for call in (lambda: read_tags(path), lambda: write_genres(path, ["Rock"], provenance=None)):
        with pytest.raises(TagError, match=r"^file not found \(moved or deleted\?\)$"):
            call()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("notes.mp3", b"just some text, not audio\n" * 40, "cannot read the tags: can't sync"),
        ("empty.flac", b"", "empty file"),
        ("notes.txt", b"hello", "unsupported file type"),
        ("random.m4a", bytes(range(256)) * 8, "not a"),
    ],
)
def test_non_audio_files(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TagError, match=reason) as info:
        write_genres(path, ["Rock"], provenance=None)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
    assert path.read_bytes() == content and leftovers(tmp_path) == []


def test_truncated_flac_keeps_its_frames_byte_for_byte(song):
    # The fingerprint compares the frame bytes, so a truncated file (which the
    # analysis refuses anyway) is tagged without a byte of its audio changing.
    path = song("flac", seconds=2.0)
    data = path.read_bytes()
    half = data[: len(data) // 2]
    path.write_bytes(half)
    write_genres(path, ["Rock"], provenance=None)
    assert path.read_bytes().endswith(half[len(half) // 2 :]) and leftovers(path.parent) == []


def test_undecodable_file_without_known_layout_is_refused(tmp_path):
    path = make_audio(tmp_path / "a.wma", seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] + bytes(len(data) // 3) * 2)
    digest = sha256(path)
    with pytest.raises(TagError):
        write_genres(path, ["Rock"], provenance=None)
    assert sha256(path) == digest and leftovers(path.parent) == []


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "album.mp3").mkdir()
    with pytest.raises(TagError, match="not a regular file"):
        read_tags(tmp_path / "album.mp3")


# --- paths, links, metadata ------------------------------------------------------------------


def test_unicode_and_spaces_in_path(tmp_path):
    path = make_audio(tmp_path / "Beyoncé — Déjà vu" / "01 Track ñ.flac", seconds=0.5)
    write_genres(path, ["R&B", "Pop"], provenance=PROV)
    assert mutagen.File(path)["GENRE"] == ["R&B", "Pop"]
    assert leftovers(path.parent) == []


def test_symlink_is_written_through(tmp_path):
    target = make_audio(tmp_path / "library" / "real.ogg", seconds=0.5)
    link = tmp_path / "playlist" / "link.ogg"
    link.parent.mkdir()
    link.symlink_to(target)
    write_genres(link, ["Rock"], provenance=None)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert mutagen.File(target)["GENRE"] == ["Rock"]
    assert read_tags(link).genres == ("Rock",)
    assert leftovers(target.parent) == [] and leftovers(link.parent) == []


def test_broken_symlink(tmp_path):
    link = tmp_path / "gone.mp3"
    link.symlink_to(tmp_path / "missing.mp3")
    with pytest.raises(TagError, match="file not found"):
        write_genres(link, ["Rock"], provenance=None)


def test_mtime_becomes_now_by_default(song):
    path = song("m4a")
    os.utime(path, (1_000_000_000, 1_000_000_000))
    start = time.time()
    write_genres(path, ["Rock"], provenance=None)
    assert path.stat().st_mtime >= start - 1


def test_keep_mtime_restores_times(song):
    path = song("m4a")
    os.utime(path, ns=(1_100_000_000_123_456_789, 1_000_000_000_987_654_321))
    write_genres(path, ["Rock"], provenance=None, keep_mtime=True)
    st = path.stat()
    assert st.st_mtime_ns == 1_000_000_000_987_654_321
    assert st.st_atime_ns == 1_100_000_000_123_456_789
    assert read_tags(path).genres == ("Rock",)


def test_mode_and_owner_are_kept(song):
    path = song("wma")
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 4321, 4322)
    write_genres(path, ["Rock"], provenance=None)
    st = path.stat()
    assert st.st_mode & 0o7777 == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_verify_false_still_writes_atomically(song):
    path = song("opus")
    write_genres(path, ["Rock"], provenance=PROV, verify=False)
    assert read_tags(path) == TagState(("Rock",), PROV)
    assert leftovers(path.parent) == []
