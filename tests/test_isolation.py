"""One file's trouble stays that file's: failures injected into every phase, a real
worker crash, and a real Ctrl-C sent to a real ``genrefy-tag`` process.

Each injection makes one phase function raise for one file; everything else — the
files, the shipped ``hybrid`` model, the worker processes, the writes — is real.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import worker_crash
from audiofiles import make_audio
from click.testing import CliRunner

from genrefy_tagger.cli import main
from genrefy_tagger.listening import engine
from genrefy_tagger.reading import audio
from genrefy_tagger.reporting.report import n_files
from genrefy_tagger.running import tagger
from genrefy_tagger.writing import journal, tags
from genrefy_tagger.writing.journal import NOTHING_TO_UNDO, read_journal
from genrefy_tagger.writing.tags import read_tags

KINDS = ("mp3", "flac", "m4a", "ogg")
MODEL = ["--model", "hybrid", "--min-confidence", "0"]


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("GENREFY_STATE_DIR", str(state))
    return state


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "Music"
    for i, kind in enumerate(KINDS):
        make_audio(root / f"{i:02d} song.{kind}", seconds=6.5, seed=i)
    return root


def report_rows(report: Path) -> list[dict]:
    data = json.loads(report.read_text())
    return data["rows"] if isinstance(data, dict) else data  # a list, or a plan with rows


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raising_for(target: Path, real, exc: BaseException):
    """``real``, except that it raises ``exc`` when any argument is ``target``."""

    def wrapper(*args, **kwargs):
        if any(isinstance(a, (str, os.PathLike)) and Path(a).name == target.name for a in args):
            raise exc
        return real(*args, **kwargs)

    return wrapper


def failing_check(target: Path, exc: BaseException):
    """``replace_atomically`` whose verification of ``target``'s temporary copy raises."""
    real = tags.replace_atomically

    def wrapper(path, original, edit, check, **kwargs):
        if Path(path).name == target.name:

            def check(tmp: Path) -> None:
                raise exc

        return real(path, original, edit, check, **kwargs)

    return wrapper


BOOL_ATOM = TypeError("'bool' object is not iterable")  # what an iTunes cpil atom once raised

# phase → (object, attribute, how to build the replacement for the target file)
PHASES = {
    "reading tags": (tagger, "read_tags", lambda t: raising_for(t, tagger.read_tags, BOOL_ATOM)),
    "decoding": (audio, "probe", lambda t: raising_for(t, audio.probe, RuntimeError("EOF"))),
    "analysing": (
        engine.Analyzer,
        "_probabilities",
        lambda t: raising_for(t, engine.Analyzer._probabilities, ValueError("bad shape")),
    ),
    "deciding": (tagger, "_decide", lambda t: raising_for(t, tagger._decide, KeyError("hiphop"))),
    "writing": (
        tagger,
        "write_genres",
        lambda t: raising_for(t, tagger.write_genres, RuntimeError("mutagen broke")),
    ),
    "verifying": (tags, "replace_atomically", lambda t: failing_check(t, AssertionError("no"))),
    "journalling": (
        journal.Journal,
        "record",
        lambda t: raising_for(
            t, journal.Journal.record, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        ),
    ),
}


REASONS = {
    "reading tags": "unexpected TypeError while reading tags: 'bool' object is not iterable",
    "decoding": "unexpected RuntimeError while analysing: EOF",  # decoding runs in the worker
    "analysing": "unexpected ValueError while analysing: bad shape",
    "deciding": "unexpected KeyError while deciding: 'hiphop'",
    "writing": "unexpected RuntimeError while writing: mutagen broke",
    "verifying": "unexpected AssertionError while writing: no",  # the write includes its check
    "journalling": "cannot record the change in the journal: No space left on device",
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_failure_in_any_phase_fails_only_that_file(
    phase: str, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    files = sorted(library.iterdir())
    target = files[1]
    before = {p: sha(p) for p in files}
    owner, name, make = PHASES[phase]
    monkeypatch.setattr(owner, name, make(target))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, [*MODEL, "-j", "1", "--report", str(report), str(library)], catch_exceptions=False
    )

    assert result.exit_code == 1, result.output
    rows = {Path(r["path"]).name: r for r in report_rows(report)}
    assert len(rows) == len(files)  # the report is complete
    failed = rows.pop(target.name)
    assert failed["action"] == "failed"
    assert "\n" not in failed["reason"] and str(library) not in failed["reason"]
    assert {r["action"] for r in rows.values()} == {"tag"}  # the others are handled
    for path in files:
        if path == target:
            assert sha(path) == before[path]  # untouched
        else:
            assert read_tags(path).genres == tuple(rows[path.name]["proposed"])
    assert "3 tagged, 0 unchanged, 0 unsure, 1 failed" in result.output
    assert not [p for p in library.iterdir() if p.name.startswith(".")]  # no temporary copies

    logged = [line for line in result.output.splitlines() if line.startswith("details of")]
    assert failed["reason"].startswith(REASONS[phase])
    if phase == "journalling":  # expected trouble: a reason, no traceback
        assert not logged
    else:
        log = Path(logged[0].split(": ", 1)[1])
        text = log.read_text()
        assert str(target) in text and "Traceback (most recent call last)" in text
        assert log.parent == tmp_path / "state" / "journal"


def test_a_failing_undo_fails_only_that_file(library: Path, monkeypatch: pytest.MonkeyPatch):
    first = CliRunner().invoke(main, [*MODEL, "-j", "1", str(library)])
    assert first.exit_code == 0, first.output
    journal_path = next(p for p in (library.parent / "state" / "journal").glob("*.jsonl"))
    target = sorted(library.iterdir())[2]
    monkeypatch.setattr(
        journal, "write_genres", raising_for(target, journal.write_genres, BOOL_ATOM)
    )
    # The byte-exact undo replaces the file itself (journal.replace_atomically).
    monkeypatch.setattr(
        journal, "replace_atomically", raising_for(target, journal.replace_atomically, BOOL_ATOM)
    )
    undone = CliRunner().invoke(main, ["--undo", str(journal_path)])
    assert undone.exit_code == 1
    lines = undone.output.splitlines()
    assert sum(line.startswith("restored") for line in lines) == len(KINDS) - 1
    assert any(line.startswith("failed") and "TypeError" in line for line in lines)
    for path in library.iterdir():
        assert bool(read_tags(path).genres) == (path == target)


def test_a_worker_that_dies_fails_its_file_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _state_dir: Path
):
    root = tmp_path / "Music"
    names = ["01 a.flac", "02 crash.flac", "03 b.mp3", "04 c.ogg", "05 d.flac", "06 e.m4a"]
    for i, name in enumerate(names):
        make_audio(root / name, seconds=6.5, seed=i)
    # The worker really exits (os._exit) on the crash file, which breaks the process pool.
    monkeypatch.setattr(engine, "_analyse_in_worker", worker_crash.analyse_or_die)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        main, [*MODEL, "-j", "2", "--dry-run", "--report", str(report), str(root)]
    )
    assert result.exit_code == 1, result.output
    rows = {Path(r["path"]).name: r for r in report_rows(report)}
    assert rows.pop("02 crash.flac")["reason"].startswith("the analysis process died")
    assert [r["action"] for r in rows.values()] == ["tag"] * (len(names) - 1)
    # Files heard again after the crash are cached like any other: a rerun listens to none.
    with sqlite3.connect(_state_dir / "cache.sqlite") as db:
        cached = {Path(p).name for (p,) in db.execute("SELECT path FROM analyses")}
    assert cached == set(rows)


def test_ctrl_c_stops_quietly_and_leaves_every_file_whole(tmp_path: Path, _state_dir: Path):
    root = tmp_path / "Music"
    files = [
        make_audio(root / f"{i:02d}.{KINDS[i % len(KINDS)]}", seconds=6.5, seed=i)
        for i in range(40)
    ]
    before = {p: sha(p) for p in files}
    cmd = [sys.executable, "-m", "genrefy_tagger", *MODEL, "-j", "2", str(root)]
    # Its own process group, which the terminal signals as a whole on Ctrl-C; SIGINT as a
    # terminal leaves it (a test run in the background may have inherited it ignored).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    journal_dir = _state_dir / "journal"
    while not list(journal_dir.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.02)  # the journal appears with the first change: writing has begun
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in out
    journal_path = next(journal_dir.glob("*.jsonl"))
    assert f"journal: {journal_path}" in out
    journalled = {Path(e["path"]).name for e in read_journal(journal_path)}
    written = [p for p in files if sha(p) != before[p]]
    assert written and len(written) < len(files)  # stopped mid-run
    for path in files:
        state = read_tags(path)
        if sha(path) != before[path]:  # finished: tagged and journalled
            assert state.genres and "hybrid" in state.provenance and path.name in journalled
        else:
            assert state.genres == ()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary copies

    undone = CliRunner().invoke(main, ["--undo", str(journal_path)])
    assert undone.exit_code == 0, undone.output
    *lines, summary = undone.output.splitlines()
    for line in lines:  # an entry whose write never happened: skipped
        assert line.startswith("restored") or NOTHING_TO_UNDO in line
    restored = sum(line.startswith("restored") for line in lines)
    skipped = len(lines) - restored
    assert summary == f"{n_files(len(lines))}: {restored} restored, {skipped} skipped, 0 failed"
    assert all(read_tags(p).genres == () for p in files)


def test_workers_leave_ctrl_c_to_the_parent(tmp_path: Path):
    """A terminal's Ctrl-C reaches every worker too: they ignore it (no traceback, no death)."""
    path = make_audio(tmp_path / "a.flac", seconds=6.5)
    with engine.AnalysisPool("hybrid", jobs=2) as pool:
        assert pool.result(pool.submit(path), path).decision is not None
        workers = list(pool._pool._processes.values())  # noqa: SLF001 - the real processes
        for worker in workers:
            os.kill(worker.pid, signal.SIGINT)
        time.sleep(0.5)
        assert all(worker.is_alive() for worker in workers)
        assert pool.result(pool.submit(path), path).decision is not None


def test_a_model_the_workers_cannot_load_is_each_files_reason(library: Path, tmp_path: Path):
    """A corrupt network file: the parent reads bundle.json fine, every worker fails to load."""
    import shutil

    from genrefy_tagger.listening.model import bundled_models

    bundle = tmp_path / "broken-model"
    shutil.copytree(bundled_models()["hybrid"], bundle)
    (bundle / "model.tflite").write_bytes(b"not a flatbuffer" * 64)
    (bundle / "model.keras").unlink()
    result = CliRunner().invoke(main, ["--model", str(bundle), "-j", "2", "-q", str(library)])
    assert result.exit_code == 1
    reasons = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(reasons) == len(KINDS)
    assert all("(cannot load the model: " in line for line in reasons)


def test_an_itunes_file_does_not_end_the_run(library: Path, tmp_path: Path):
    """Real iTunes atoms (boolean cpil/pgap) once raised TypeError and ended the run."""
    from mutagen.mp4 import MP4

    itunes = make_audio(library / "02b itunes.m4a", seconds=6.5, seed=9)
    audio = MP4(itunes)
    audio["cpil"], audio["pgap"] = True, True
    audio.save()
    report = tmp_path / "r.json"
    result = CliRunner().invoke(main, [*MODEL, "-j", "1", "--report", str(report), str(library)])
    assert "Traceback" not in result.output
    rows = {Path(r["path"]).name: r for r in report_rows(report)}
    assert len(rows) == len(KINDS) + 1
    row = rows.pop(itunes.name)
    # Tagged where the tag layer handles the atoms, else a one-line failure; never a crash.
    assert row["action"] == "tag" or (row["action"] == "failed" and "\n" not in row["reason"])
    assert result.exit_code == (0 if row["action"] == "tag" else 1)
    assert {r["action"] for r in rows.values()} == {"tag"}


def test_a_format_without_tags_is_left_alone_and_stale_copies_are_removed(
    library: Path, tmp_path: Path
):
    """Raw ADTS AAC cannot hold a genre: an 'unchanged' row that says so, not a failure.

    A temporary copy left by a killed genrefy (its process gone) is removed by the next
    run that writes in that folder; the originals beside it are untouched by that.
    """
    from audiofiles import ffmpeg_encode

    aac = ffmpeg_encode(library / "03b raw.aac", container="adts", codec="aac", seconds=6.5)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = library / f".00 song.mp3.genrefy-{dead}-abc123.tmp"
    stale.write_bytes(b"half a copy")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(main, [*MODEL, "-j", "1", "--report", str(report), str(library)])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in report_rows(report)}
    assert rows[aac.name]["action"] == "unchanged"
    assert rows[aac.name]["reason"].startswith("format cannot hold tags")
    assert {r["action"] for n, r in rows.items() if n != aac.name} == {"tag"}
    assert not stale.exists()
