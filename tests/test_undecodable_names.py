"""File names that are not valid UTF-8 (Latin-1 rips, Samba mounts): real files, real runs.

Every command must finish and treat such a file like any other, and nothing about its
name may be lost on the way (see ``genrefy_tagger/fsnames.py``): the cache finds it
again, the journal and the plans name the same bytes, the console shows ``\\xNN``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audiofiles import make_audio
from reviewlib import tag
from test_review_page import browser  # noqa: F401 - the headless browser fixture

from genrefy_tagger.isolation import ErrorLog
from genrefy_tagger.running.cache import default_cache_path
from genrefy_tagger.writing.tags import read_tags

ROOT = Path(__file__).resolve().parents[1]
#: Real names' bytes: Latin-1 "café" and two bytes no UTF-8 text ever holds.
BAD = (b"caf\xe9.mp3", b"bad\xff\xfe.flac")
SHOWN = ("caf\\xe9.mp3", "bad\\xff\\xfe.flac")

#: How --undo reports a file given back its original bytes.
UNDONE = r"  \(back to no genre, byte for byte\)$"


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two files with undecodable names beside two ordinary ones."""
    root = tmp_path / "M"
    make_audio(root / "ok.mp3", seconds=6.5, seed=1)
    make_audio(root / "ok.flac", seconds=6.5, seed=2)
    for seed, name in enumerate(BAD, start=3):
        made = make_audio(
            tmp_path / f"made{Path(os.fsdecode(name)).suffix}", seconds=6.5, seed=seed
        )
        os.rename(made, os.fsencode(root) + b"/" + name)
    return root


def bad_paths(root: Path) -> list[Path]:
    return [Path(os.fsdecode(os.fsencode(root) + b"/" + name)) for name in BAD]


def journal_of(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("journal:"))


def test_dry_run_cache_and_every_report(folder: Path, tmp_path: Path):
    first = tag("--dry-run", "--min-confidence", "0", str(folder))
    assert first.exit_code == 0, first.output
    assert "4 files: 4 would tag, 0 unchanged, 0 unsure, 0 failed" in first.output
    for shown in SHOWN:
        assert re.search(rf"^would tag .*  {re.escape(shown)}$", first.output, re.M), first.output

    # The cache holds them under their bytes: make it say Blues for sure, and the re-run
    # (with each kind of report) must answer from it.
    with sqlite3.connect(default_cache_path()) as db:
        for path in bad_paths(folder):
            blob = os.fsencode(os.path.abspath(path))
            (n_genres,) = db.execute(
                "SELECT n_genres FROM analyses WHERE path = ?", (blob,)
            ).fetchone()
            probs = np.zeros((1, n_genres))
            probs[0, 0] = 1.0
            db.execute("UPDATE analyses SET probs = ? WHERE path = ?", (probs.tobytes(), blob))
    for kind in ("json", "csv", "html"):
        report = tmp_path / f"r.{kind}"
        again = tag("--dry-run", "--min-confidence", "0", "--report", str(report), str(folder))
        assert again.exit_code == 0, again.output
        for shown in SHOWN:
            assert f"100%  (none) → Blues                   {shown}" in again.output, again.output
    wanted = {os.fsencode(p) for p in bad_paths(folder)}

    data = json.loads((tmp_path / "r.json").read_bytes().decode("utf-8"))  # valid UTF-8
    assert wanted <= {os.fsencode(r["path"]) for r in data["rows"]}
    assert len(data["rows"]) == 4 and {r["action"] for r in data["rows"]} == {"tag"}

    with open(tmp_path / "r.csv", encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    assert wanted <= {os.fsencode(r["path"]) for r in rows} and len(rows) == 4

    page = (tmp_path / "r.html").read_bytes().decode("utf-8")
    script = page.split('<script type="application/json" id="plan">', 1)[1].split("</script>")[0]
    embedded = json.loads(script)
    assert wanted <= {os.fsencode(r["path"]) for r in embedded["rows"]}
    views = {v["rel"]: v["src"] for v in embedded["view"]}
    assert views["caf\\xe9.mp3"] == "M/caf%E9.mp3"
    assert views["bad\\xff\\xfe.flac"] == "M/bad%FF%FE.flac"


def test_write_then_undo(folder: Path):
    # A temporary copy a killed run left beside such a file is cleaned up like any other.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = os.fsencode(folder) + b"/.bad\xff\xfe.flac.genrefy-" + dead.encode() + b"-x1y2.tmp"
    with open(stale, "wb") as f:
        f.write(b"half a copy")

    written = tag("--min-confidence", "0", str(folder))
    assert written.exit_code == 0, written.output
    assert "4 files: 4 tagged, 0 unchanged, 0 unsure, 0 failed" in written.output
    assert not os.path.exists(stale)
    for path in bad_paths(folder):
        state = read_tags(path)
        assert len(state.genres) == 1 and "gtzan-hybrid" in state.provenance
    journal = journal_of(written.output)
    lines = Path(journal).read_bytes().decode("utf-8").splitlines()  # valid UTF-8
    assert {os.fsencode(json.loads(line)["path"]) for line in lines} == {
        os.fsencode(os.path.abspath(p)) for p in folder.iterdir() if not p.name.startswith(".")
    }

    undone = tag("--undo", journal)
    assert undone.exit_code == 0, undone.output
    assert "4 files: 4 restored, 0 skipped, 0 failed" in undone.output
    for shown in SHOWN:
        assert re.search(rf"^restored .*/M/{re.escape(shown)}{UNDONE}",
                         undone.output, re.M), undone.output  # fmt: skip
    for path in bad_paths(folder):
        assert read_tags(path).genres == () and read_tags(path).provenance is None


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_plan_round_trip(folder: Path, tmp_path: Path, kind: str):
    plan = tmp_path / f"plan.{kind}"
    made = tag("--dry-run", "--min-confidence", "0", "--report", str(plan), str(folder))
    assert made.exit_code == 0, made.output
    applied = tag("--apply", str(plan), str(folder))
    assert applied.exit_code == 0, applied.output
    assert "4 rows: 4 tagged, 0 unchanged, 0 skipped" in applied.output
    for path in bad_paths(folder):
        assert len(read_tags(path).genres) == 1
    undone = tag("--undo", journal_of(applied.output))
    assert undone.exit_code == 0 and "4 restored" in undone.output, undone.output


def test_console_of_a_real_process_with_a_strict_utf8_terminal(folder: Path, tmp_path: Path):
    """As on a desktop with a UTF-8 locale: stdout refuses what is not UTF-8."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8:strict")
    # The folder itself has such a name too, given as raw bytes on the command line.
    odd = os.fsencode(tmp_path) + b"/Alb\xe9"
    os.rename(folder, odd)
    args = [sys.executable, "-m", "genrefy_tagger", "--model", "hybrid", "-j", "1", "--dry-run"]
    done = subprocess.run(
        [*args, "--min-confidence", "0", odd], capture_output=True, env=env, timeout=300
    )
    out = done.stdout.decode("utf-8")  # valid UTF-8
    assert done.returncode == 0, (out, done.stderr.decode("utf-8", "replace"))
    assert "4 files: 4 would tag, 0 unchanged, 0 unsure, 0 failed" in out
    for shown in SHOWN:
        assert shown in out


def test_the_error_log_takes_such_a_name_and_its_traceback(tmp_path: Path):
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/gone\xe9.mp3"))
    try:
        open(path, "rb")  # noqa: SIM115 - the real error, with the name inside its message
    except FileNotFoundError as exc:
        error = exc
    log = ErrorLog(tmp_path / "run.errors.log")
    reason = log.unexpected(path, "reading tags", error)
    assert reason == "unexpected FileNotFoundError while reading tags: No such file or directory"
    text = log.path.read_bytes().decode("utf-8")  # valid UTF-8
    assert f"--- {tmp_path}/gone\\xe9.mp3  (reading tags, " in text
    assert "FileNotFoundError: [Errno 2] No such file or directory: " in text
    assert log.summary() == f"details of unexpected errors (1 file): {log.path}"


def test_libsndfile_decodes_them_like_any_other(folder: Path):
    """Its binding cannot take such a name as a str; given the bytes, it needs no fallback."""
    from genrefy_tagger.reading.audio import load, probe

    flac, bad_flac = folder / "ok.flac", bad_paths(folder)[1]
    assert probe(flac).decoder == probe(bad_flac).decoder == "soundfile"
    assert len(load(bad_flac, sample_rate=22050)) == len(load(flac, sample_rate=22050))


def test_review_page_plays_them_and_downloads_a_plan_that_applies(
    folder: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    """In headless Chromium: shown with \\xNN, played through their %NN links, and the
    downloaded plan (JSON.stringify of what the page read) names the same bytes."""
    driver = request.getfixturevalue("browser")  # tests/test_review_page.py's
    html = tmp_path / "review.html"
    made = tag("--dry-run", "--min-confidence", "0", "--report", str(html), str(folder))
    assert made.exit_code == 0, made.output
    driver.get(html.as_uri())
    rows = {
        r.find_element("css selector", ".name").text: r
        for r in driver.find_elements("css selector", "#rows tr")
    }
    assert set(SHOWN) <= rows.keys() and len(rows) == 4
    for shown in SHOWN:
        rows[shown].find_element("css selector", ".play").click()
        audio = rows[shown].find_element("tag name", "audio")
        state = None
        for _ in range(100):
            state = driver.execute_script(
                "const a = arguments[0]; "
                "return [a.readyState, a.duration, a.error && a.error.code];",
                audio,
            )
            if state[0] >= 1 or state[2]:
                break
            time.sleep(0.1)
        assert state[2] is None and abs(state[1] - 6.5) < 0.2, (shown, state)
        rows[shown].find_element("css selector", ".play").click()  # pause
    driver.find_element("id", "download").click()
    target = driver.downloads / "genrefy-plan.json"
    for _ in range(100):
        if target.exists():
            break
        time.sleep(0.1)
    plan = json.loads(target.read_bytes().decode("utf-8"))
    wanted = {os.fsencode(os.path.abspath(p)) for p in bad_paths(folder)}
    assert wanted <= {os.fsencode(r["path"]) for r in plan["rows"]}
    applied = tag("--apply", str(target))
    assert applied.exit_code == 0, applied.output
    assert "4 rows: 4 tagged" in applied.output
    for path in bad_paths(folder):
        assert len(read_tags(path).genres) == 1


def test_a_refused_plan_names_such_a_file_readably(folder: Path, tmp_path: Path):
    outside = os.fsdecode(os.fsencode(tmp_path) + b"/elsewhere/caf\xe9.mp3")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"rows": [{"path": outside, "action": "unsure"}]}), "utf-8")
    refused = tag("--apply", str(plan), str(folder))
    assert refused.exit_code == 2, refused.output
    assert f"{tmp_path}/elsewhere/caf\\xe9.mp3 is outside the plan's folder" in refused.output


def test_names_with_control_characters_keep_one_line_each(tmp_path: Path):
    """A newline or a terminal escape in a name is shown escaped; the file is still tagged."""
    root = tmp_path / "C"
    root.mkdir()
    names = {"two\nlines.mp3": "two\\nlines.mp3", "\x1b[31mred.flac": "\\x1b[31mred.flac"}
    for seed, name in enumerate(names, start=1):
        os.rename(make_audio(tmp_path / f"made{Path(name).suffix}", seconds=6.5, seed=seed),
                  root / name)  # fmt: skip

    written = tag("--min-confidence", "0", str(root))
    assert written.exit_code == 0, written.output
    assert "\x1b" not in written.output
    for escaped in names.values():
        assert re.search(rf"^tagged .* {re.escape(escaped)}$", written.output, re.M), written.output
    for name in names:
        assert len(read_tags(root / name).genres) == 1
    undone = tag("--undo", journal_of(written.output))
    assert undone.exit_code == 0 and "2 restored" in undone.output, undone.output
    for escaped in names.values():
        assert re.search(rf"^restored .*/C/{re.escape(escaped)}{UNDONE}",
                         undone.output, re.M), undone.output  # fmt: skip
    for name in names:
        assert read_tags(root / name).genres == ()
