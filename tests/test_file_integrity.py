"""Files exactly as they were: decoders read them the same, undo gives the bytes back,
hard links and extended attributes survive.

``data/mpeglayer3.wav`` is beets' own test file (MP3 audio in a RIFF/WAVE container,
from the beets 2.14.1 sdist's ``test/rsrc``; beets is MIT-licensed, (c) Adrian Sampson
and contributors). The other files are made here: see ``audiofiles.py``.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import shutil
import struct
from pathlib import Path

import pytest
from audiofiles import ffmpeg_encode, make_audio

from genrefy_tagger.writing.decoders import views
from genrefy_tagger.writing.journal import Journal, read_journal, undo
from genrefy_tagger.writing.restore import BOUND, patch
from genrefy_tagger.writing.tags import TagError, TagState, read_tags, write_genres

DATA = Path(__file__).parent / "data"
PROV = "genrefy;model=m-1;confidence=0.900;genres=Rock|Pop;date=2026-01-01T00:00:00Z"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def libsndfile(path: Path) -> object:
    return views(path)["libsndfile"]


def write_and_undo(tmp_path: Path, path: Path, genres: tuple[str, ...] = ("Rock", "Pop")) -> None:
    journal_path = tmp_path / "journal.jsonl"
    with Journal(journal_path) as journal:
        previous, new = read_tags(path), TagState(genres, PROV)
        record = journal.recorder(path, previous, new, model="m-1")
        write_genres(path, genres, provenance=PROV, before_replace=record)
    assert read_tags(path) == TagState(genres, PROV)
    results = list(undo(journal_path))
    assert [r.action for r in results] == ["restored"], results


# --- decoders read it the same ----------------------------------------------------------------


def test_mp3_in_wav_stays_readable_by_libsndfile(tmp_path):
    path = tmp_path / "mpeglayer3.wav"
    shutil.copyfile(DATA / "mpeglayer3.wav", path)
    before, digest = views(path), sha256(path)
    assert isinstance(before["libsndfile"], dict)  # it reads the original
    try:
        write_genres(path, ["Rock"], provenance=PROV)
    except TagError as exc:  # libmpg123 would run on into an id3 chunk after the audio
        assert "libsndfile" in str(exc)
        assert sha256(path) == digest
    assert views(path) == before


def _id3v1_only_mp3(path: Path, *, xing: bool) -> Path:
    """An MP3 whose only tag is an ID3v1 tag, with or without a Xing/LAME header."""
    options = {"id3v2_version": "0", "write_xing": "1" if xing else "0"}
    ffmpeg_encode(path, container="mp3", codec="libmp3lame", seconds=2.0, options=options)
    assert path.read_bytes()[:3] != b"ID3"
    title = b"Old Song".ljust(30, b"\0")
    tag = b"TAG" + title + b"Artist".ljust(30, b"\0") + b"\0" * 30 + b"1999" + b"\0" * 30 + b"\x11"
    with open(path, "ab") as f:
        f.write(tag)
    assert len(tag) == 128
    return path


def test_id3v1_only_mp3_with_xing_gets_id3v2_and_stays_readable_the_same(tmp_path):
    path = _id3v1_only_mp3(tmp_path / "v1.mp3", xing=True)
    assert read_tags(path).genres == ("Rock",)  # ID3v1 genre 17
    before, digest = views(path), sha256(path)
    write_and_undo(tmp_path, path)
    assert views(path) == before
    assert sha256(path) == digest


def test_id3v1_only_mp3_without_xing_is_written_in_its_id3v1_tag(tmp_path):
    # Without a Xing header decoders guess the length from the size: only ID3v1 may change.
    path = _id3v1_only_mp3(tmp_path / "v1.mp3", xing=False)
    before, digest, size = views(path), sha256(path), path.stat().st_size
    journal_path = tmp_path / "journal.jsonl"
    with Journal(journal_path) as journal:
        record = journal.recorder(path, read_tags(path), TagState(("Pop",), PROV), model="m")
        write_genres(path, ["Pop"], provenance=PROV, before_replace=record)
    assert read_tags(path) == TagState(("Pop",), None)
    assert path.stat().st_size == size and views(path) == before
    assert [r.action for r in undo(journal_path)] == ["restored"]
    assert views(path) == before and sha256(path) == digest


# --- byte-exact undo --------------------------------------------------------------------------


def _ape(path: Path) -> Path:
    """A Monkey's Audio (.ape) file: descriptor and header, version 3.99, no frames.

    No encoder for it ships with FFmpeg or libsndfile, so it is made by hand; mutagen
    reads it and genrefy tags it (APEv2), and no decoder reads it before or after.
    """
    descriptor = (
        b"MAC " + struct.pack("<HH", 3990, 0) + struct.pack("<IIIIIII", 52, 24, 0, 0, 0, 0, 0)
    )
    header = struct.pack("<HHIIIHHI", 2000, 0, 73728, 0, 0, 16, 2, 44100)
    path.write_bytes(descriptor + b"\0" * 16 + header + b"\0" * 400)
    return path


KINDS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "wv", "ape")


@pytest.mark.parametrize("kind", KINDS)
def test_write_and_undo_give_back_the_same_bytes(tmp_path, kind):
    path = (
        _ape(tmp_path / "a.ape")
        if kind == "ape"
        else make_audio(tmp_path / f"a.{kind}", seconds=0.5)
    )
    write_genres(path, ["Jazz"], provenance=None)  # someone else's tags, to be kept
    digest, before = sha256(path), views(path)
    write_and_undo(tmp_path, path)
    assert sha256(path) == digest
    assert views(path) == before
    entry = read_journal(tmp_path / "journal.jsonl")[0]
    assert entry["restore"]["byte_exact"] is True


def test_two_changes_in_one_journal_undo_to_the_first_bytes(tmp_path):
    path = make_audio(tmp_path / "a.mp3", seconds=0.5)
    digest = sha256(path)
    with Journal(tmp_path / "j.jsonl") as journal:
        for genres in (("Rock",), ("Pop", "Soul")):
            previous, new = read_tags(path), TagState(genres, PROV)
            record = journal.recorder(path, previous, new, model="m-1")
            write_genres(path, genres, provenance=PROV, before_replace=record)
    assert [r.reason for r in undo(tmp_path / "j.jsonl")] == ["back to no genre, byte for byte"]
    assert sha256(path) == digest


def test_a_file_saved_since_gets_its_tags_back_as_before(tmp_path):
    path = make_audio(tmp_path / "a.flac", seconds=0.5)
    with Journal(tmp_path / "j.jsonl") as journal:
        record = journal.recorder(path, read_tags(path), TagState(("Rock",), PROV), model="m")
        write_genres(path, ["Rock"], provenance=PROV, before_replace=record)
    import mutagen

    f = mutagen.File(path)
    f["title"] = "edited elsewhere"
    f.save()
    write_genres(path, ["Rock"], provenance=PROV)  # still holds what genrefy wrote
    [result] = undo(tmp_path / "j.jsonl")
    assert result.action == "restored" and "byte for byte" not in result.reason
    assert read_tags(path) == TagState((), None)
    assert mutagen.File(path)["title"] == ["edited elsewhere"]


def test_a_change_over_the_bound_is_journalled_as_tag_equal(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(os.urandom(BOUND + 4096))
    new.write_bytes(os.urandom(BOUND + 4096))
    entry = patch(old, new)
    assert entry["byte_exact"] is False and "over 1 MB" in entry["why"]
    assert entry["sha256"] == sha256(old)


def test_patch_keeps_only_the_changed_bytes(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    body = os.urandom(200_000)
    old.write_bytes(b"HEAD" + body + b"TAIL")
    new.write_bytes(b"HEAD" + b"longer tag" + body + b"TAIX")
    entry = patch(old, new)
    kept = sum(len(base64.b64decode(data)) for _, data in entry["runs"])
    assert entry["byte_exact"] is True and kept <= 4


# --- extended attributes and hard links -------------------------------------------------------


def test_a_user_extended_attribute_survives(tmp_path):
    path = make_audio(tmp_path / "a.flac", seconds=0.5)
    try:
        os.setxattr(path, "user.comment", b"keep me")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            pytest.skip(f"this file system keeps no user xattrs: {exc}")
        raise
    write_and_undo(tmp_path, path)
    assert os.getxattr(path, "user.comment") == b"keep me"


def test_a_hard_linked_file_is_left_alone_by_default(tmp_path):
    path = make_audio(tmp_path / "a.mp3", seconds=0.5)
    other = tmp_path / "library" / "a.mp3"
    other.parent.mkdir()
    os.link(path, other)
    digest = sha256(path)
    with pytest.raises(TagError, match="has 2 hard links, left unchanged"):
        write_genres(path, ["Rock"], provenance=PROV)
    assert sha256(path) == digest and os.stat(path).st_nlink == 2


def test_a_hard_linked_file_is_written_in_place_under_the_option(tmp_path):
    path = make_audio(tmp_path / "a.mp3", seconds=0.5)
    other = tmp_path / "library" / "a.mp3"
    other.parent.mkdir()
    os.link(path, other)
    inode, digest = os.stat(path).st_ino, sha256(path)
    with Journal(tmp_path / "j.jsonl") as journal:
        record = journal.recorder(path, read_tags(path), TagState(("Rock",), PROV), model="m")
        write_genres(path, ["Rock"], provenance=PROV, hard_links="in-place", before_replace=record)
    assert os.stat(path).st_ino == inode and os.stat(path).st_nlink == 2
    assert read_tags(path) == read_tags(other) == TagState(("Rock",), PROV)
    assert [r.action for r in undo(tmp_path / "j.jsonl", hard_links="in-place")] == ["restored"]
    assert sha256(other) == digest and os.stat(other).st_ino == inode


def test_a_hard_link_can_be_broken_under_the_option(tmp_path):
    path = make_audio(tmp_path / "a.mp3", seconds=0.5)
    other = tmp_path / "other.mp3"
    os.link(path, other)
    digest = sha256(other)
    write_genres(path, ["Rock"], provenance=PROV, hard_links="break")
    assert os.stat(path).st_nlink == 1 and os.stat(other).st_nlink == 1
    assert read_tags(path).genres == ("Rock",) and sha256(other) == digest


def test_the_cli_undo_follows_hard_links_option(tmp_path):
    from click.testing import CliRunner

    from genrefy_tagger.cli import main

    path = make_audio(tmp_path / "a.mp3", seconds=0.5)
    os.link(path, tmp_path / "b.mp3")
    digest = sha256(path)
    with Journal(tmp_path / "j.jsonl") as journal:
        record = journal.recorder(path, read_tags(path), TagState(("Rock",), PROV), model="m")
        write_genres(path, ["Rock"], provenance=PROV, hard_links="in-place", before_replace=record)
    runner = CliRunner()
    assert "--hard-links [skip|in-place|break]" in runner.invoke(main, ["--help"]).output
    skipped = runner.invoke(main, ["--undo", str(tmp_path / "j.jsonl")])
    assert "has 2 hard links, left unchanged" in skipped.output and skipped.exit_code == 1
    done = runner.invoke(main, ["--undo", str(tmp_path / "j.jsonl"), "--hard-links", "in-place"])
    assert "back to no genre, byte for byte" in done.output, done.output
    assert sha256(tmp_path / "b.mp3") == digest
