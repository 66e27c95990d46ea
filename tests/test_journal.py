"""The change journal and undo, on real files in several formats."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import mutagen
import pytest
from audiofiles import make_audio

from genrefy_tagger.writing.journal import (
    NOTHING_TO_UNDO,
    Journal,
    JournalError,
    default_journal_path,
    read_journal,
    undo,
)
from genrefy_tagger.writing.tags import TagState, read_tags, write_genres

KINDS = ("mp3", "flac", "m4a", "wma", "wv", "opus")
PROV = "genrefy;model=m-1;confidence=0.800;genres=Rock|Pop;date=2026-01-01T00:00:00Z"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tag_and_record(journal: Journal, path: Path, genres: list[str], prov: str | None) -> None:
    """What the tagger does: write, then journal the change."""
    previous = write_genres(path, genres, provenance=prov)
    journal.record(path, previous, read_tags(path), model="m-1")


@pytest.fixture
def library(tmp_path: Path) -> list[Path]:
    """Files with existing genres (one with an old provenance), and one untagged."""
    # FFmpeg estimates a WMA shorter than a few seconds from its size, so a longer tag
    # changes the duration it reports and the write is (rightly) refused.
    files = [
        make_audio(tmp_path / "music" / f"t.{kind}", seconds=4.0 if kind == "wma" else 0.5)
        for kind in KINDS
    ]
    for path in files[:-1]:
        write_genres(path, ["Jazz"], provenance=None)
    write_genres(files[0], ["Blues", "Soul"], provenance="genrefy;model=old")
    return files


def tag_library(tmp_path: Path, files: list[Path]) -> Path:
    journal_path = tmp_path / "state" / "journal" / "run.jsonl"
    with Journal(journal_path) as journal:
        for path in files:
            tag_and_record(journal, path, ["Rock", "Pop"], PROV)
    return journal_path


def test_record_writes_one_json_line_per_file(tmp_path, library):
    journal_path = tag_library(tmp_path, library)
    lines = journal_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(library)
    first = json.loads(lines[0])
    assert set(first) == {"time", "path", "model", "previous", "new"}
    assert first["path"] == str(library[0].resolve()) and first["model"] == "m-1"
    assert first["previous"] == {"genres": ["Blues", "Soul"], "provenance": "genrefy;model=old"}
    assert first["new"] == {"genres": ["Rock", "Pop"], "provenance": PROV}
    datetime.fromisoformat(first["time"])
    assert read_journal(journal_path) == [json.loads(line) for line in lines]


def test_lines_are_on_disk_before_close(tmp_path, library):
    journal = Journal(tmp_path / "j.jsonl")
    tag_and_record(journal, library[1], ["Rock"], PROV)
    assert len(read_journal(tmp_path / "j.jsonl")) == 1  # readable while still open
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(ValueError):
        journal.record(library[1], TagState((), None), TagState((), None), model="m")


def test_undo_restores_previous_tags_in_every_format(tmp_path, library):
    before = {path: read_tags(path) for path in library}
    journal_path = tag_library(tmp_path, library)
    results = list(undo(journal_path))
    assert [r.action for r in results] == ["restored"] * len(library)
    assert [r.path for r in results] == [p.resolve() for p in reversed(library)]  # newest first
    for path in library:
        assert read_tags(path) == before[path]
    assert mutagen.File(library[0]).tags["TCON"].text == ["Blues", "Soul"]
    untagged = mutagen.File(library[-1]).tags  # opus: genre and provenance removed again
    assert "GENRE" not in untagged and "GENREFY" not in untagged


def test_second_undo_is_a_no_op(tmp_path, library):
    journal_path = tag_library(tmp_path, library)
    list(undo(journal_path))
    digests = [sha256(p) for p in library]
    results = list(undo(journal_path))
    assert {(r.action, r.reason) for r in results} == {("skipped", NOTHING_TO_UNDO)}
    assert [sha256(p) for p in library] == digests


def test_undo_skips_a_file_changed_since(tmp_path, library):
    journal_path = tag_library(tmp_path, library)
    changed = library[2]
    write_genres(changed, ["Metal"], provenance=None)  # the user retagged it by hand
    digest = sha256(changed)
    results = {r.path: r for r in undo(journal_path)}
    result = results[changed.resolve()]
    assert result.action == "skipped"
    assert result.reason == "changed since (now Metal), left alone"
    assert sha256(changed) == digest
    assert sum(r.action == "restored" for r in results.values()) == len(library) - 1


def test_undo_reports_a_missing_file(tmp_path, library):
    journal_path = tag_library(tmp_path, library)
    library[3].unlink()
    results = {r.path: r for r in undo(journal_path)}
    assert results[library[3].resolve()].action == "failed"
    assert results[library[3].resolve()].reason == "file not found (moved or deleted?)"
    assert results[library[1].resolve()].action == "restored"


def test_dry_run_changes_nothing(tmp_path, library):
    journal_path = tag_library(tmp_path, library)
    digests = [sha256(p) for p in library]
    results = list(undo(journal_path, dry_run=True))
    assert all(r.action == "restored" and "dry run" in r.reason for r in results)
    assert [sha256(p) for p in library] == digests
    assert all(r.action == "restored" for r in undo(journal_path))  # still undoable


def test_torn_last_line_is_tolerated(tmp_path, library):
    journal_path = tag_library(tmp_path, library[:2])
    full = json.dumps({"time": "x", "path": str(library[2]), "model": "m"}).encode()
    with open(journal_path, "ab") as f:
        f.write(full[: len(full) // 2] + "é".encode()[:1])  # crash mid-line, mid-character
    assert len(read_journal(journal_path)) == 2
    assert [r.action for r in undo(journal_path)] == ["restored", "restored"]


def test_appending_after_a_torn_line_starts_a_fresh_line(tmp_path, library):
    journal_path = tmp_path / "j.jsonl"
    journal_path.write_bytes(b'{"time": "2026-01-01T00:00:00+00:00", "pa')
    with Journal(journal_path) as journal:
        tag_and_record(journal, library[1], ["Rock"], PROV)
    entries = read_journal(journal_path)
    assert len(entries) == 1 and entries[0]["new"]["genres"] == ["Rock"]


def test_file_changed_twice_in_one_journal_goes_back_to_the_start(tmp_path, library):
    path = library[1]
    original = read_tags(path)
    with Journal(tmp_path / "j.jsonl") as journal:
        tag_and_record(journal, path, ["Rock"], PROV)
        tag_and_record(journal, path, ["Pop"], PROV)
    assert [r.action for r in undo(tmp_path / "j.jsonl")] == ["restored"]
    assert read_tags(path) == original
    assert [r.reason for r in undo(tmp_path / "j.jsonl")] == [NOTHING_TO_UNDO]


def test_default_journal_path(monkeypatch, tmp_path):
    now = datetime(2026, 11, 25, 16, 40, 5)
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert default_journal_path(now) == tmp_path / "s" / "journal" / "20261125-164005.jsonl"
    monkeypatch.delenv("GENREFY_STATE_DIR")
    assert default_journal_path(now) == tmp_path / "x" / "genrefy" / "journal" / (
        "20261125-164005.jsonl"
    )
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "state" / "genrefy" / "journal"
    assert default_journal_path(now).parent == expected
    assert default_journal_path().name.endswith(".jsonl")


def test_journal_creates_parent_folders_but_no_empty_file(tmp_path, library):
    path = tmp_path / "a" / "b" / "run.jsonl"
    Journal(path).close()
    assert path.parent.is_dir() and not path.exists()  # a run that changed nothing
    assert list(path.parent.iterdir()) == []  # the writability probe is gone too
    with Journal(path) as journal:
        assert not path.exists()
        tag_and_record(journal, library[1], ["Rock"], PROV)
        assert journal.recorded == 1
    assert len(read_journal(path)) == 1


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_an_unusable_location_is_refused_at_once(tmp_path, where):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "j.jsonl" if where == "under a file" else tmp_path
    with pytest.raises(JournalError) as caught:
        Journal(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "GENREFY_STATE_DIR" in message


def test_an_existing_journal_is_checked_without_being_changed(tmp_path, library):
    path = tag_library(tmp_path, library[:1])
    digest = sha256(path)
    Journal(path).close()
    assert sha256(path) == digest


def test_an_unusable_home_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("GENREFY_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    (tmp_path / "home").write_text("a file, not a folder")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(JournalError, match="Not a directory .set GENREFY_STATE_DIR"):
        Journal(default_journal_path())


def test_undo_of_a_change_that_never_happened_leaves_the_file_alone(tmp_path, library):
    """The run was stopped after journalling a change and before making it."""
    path = library[1]
    before = read_tags(path)
    with Journal(tmp_path / "j.jsonl") as journal:
        journal.record(path, before, TagState(("Rock",), PROV), model="m-1")
    digest = sha256(path)
    assert [(r.action, r.reason) for r in undo(tmp_path / "j.jsonl")] == [
        ("skipped", NOTHING_TO_UNDO)
    ]
    assert sha256(path) == digest
