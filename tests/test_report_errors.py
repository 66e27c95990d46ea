"""A report that cannot be written mid-run: real write errors, not injected ones.

``/dev/full`` answers every write with ENOSPC (a full disk), and a file size limit
(``RLIMIT_FSIZE``) makes the kernel refuse a write past it with EFBIG. Either way the
run stops between two files with one line saying why and exit status 3; every file
written until then is complete and journalled, the rest untouched, and no half report
or temporary copy is left behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audiofiles import make_audio
from click.testing import CliRunner

from genrefy_tagger.cli import EXIT_STOPPED, main
from genrefy_tagger.writing.journal import read_journal
from genrefy_tagger.writing.tags import read_tags

MODEL = ["--model", "hybrid", "--min-confidence", "0", "-j", "1"]
KINDS = ("mp3", "flac", "m4a", "ogg")
ROOT = Path(__file__).resolve().parents[1]

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("GENREFY_STATE_DIR", str(state))
    return state


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library(root: Path, *, before: int, broken: int, after: int) -> tuple[list, list]:
    """``before`` tracks, then ``broken`` files that are not audio (each a cheap report row,
    so the report grows past its write buffer), then ``after`` tracks, in walk order."""
    first = [make_audio(root / f"a{i}.{KINDS[i]}", seconds=6.5, seed=i) for i in range(before)]
    for i in range(broken):
        (root / f"b{i:03d} broken.mp3").write_text("not audio")
    last = [make_audio(root / f"c{i}.{KINDS[i]}", seconds=6.5, seed=9 + i) for i in range(after)]
    return first, last


@needs_dev_full
def test_a_full_disk_under_the_report_stops_the_run_cleanly(tmp_path: Path, _state_dir: Path):
    root = tmp_path / "Music"
    first, last = library(root, before=4, broken=80, after=4)
    untouched = {p: sha(p) for p in last}
    report = tmp_path / "report.json"
    report.symlink_to("/dev/full")  # every write to it: "No space left on device"

    result = CliRunner().invoke(main, [*MODEL, "--report", str(report), str(root)])

    assert result.exit_code == EXIT_STOPPED == 3, result.output
    assert isinstance(result.exception, SystemExit)  # sys.exit(3), not an escaped error
    assert "Traceback" not in result.output
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == f"error: cannot write the report {report}: No space left on device"
    assert (
        "stopped, no report: every file written is complete and journalled; "
        "the rest are untouched" in result.stdout
    )
    assert f"report: {report}" not in result.stdout
    # Stopped between two files, part-way: the first tracks are tagged and journalled…
    (journal,) = (_state_dir / "journal").glob("*.jsonl")
    assert {Path(e["path"]).name for e in read_journal(journal)} == {p.name for p in first}
    assert all(read_tags(p).genres for p in first)
    assert f"journal: {journal}" in result.stdout
    # …the ones after the failure were never written, and nothing is half done.
    assert {p: sha(p) for p in last} == untouched
    summary = next(line for line in result.stdout.splitlines() if " files: " in line)
    assert summary.startswith(f"{summary.split()[0]} files: 4 tagged, 0 unchanged, 0 unsure, ")
    assert 4 < int(summary.split()[0]) < 4 + 80  # stopped among the broken files
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary copies
    assert report.is_symlink() and os.readlink(report) == "/dev/full"  # the device left alone


def test_a_review_page_too_large_to_write_stops_the_run_cleanly(tmp_path: Path):
    """The page is written at the end: past a file size limit, one line and exit 3, and
    neither the page nor its temporary copy is left behind."""
    root = tmp_path / "Music"
    library(root, before=1, broken=120, after=0)  # a page of ~70 KB
    page = tmp_path / "review.html"
    limit = 40_000  # room for the analysis cache (a few pages of SQLite), not for the page

    def limited() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "genrefy_tagger", *MODEL, "--dry-run", "-q"]
    done = subprocess.run(
        [*cmd, "--report", str(page), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited,
    )

    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot write the report {page}: File too large"]
    assert "stopped, no report: nothing written (dry run)" in done.stdout
    assert "121 files: 1 would tag, 0 unchanged, 0 unsure, 120 failed" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Music", "state"]
