"""``genrefy-tag --apply PLAN``: real reports, edited, checked, written, undone."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest
from reviewlib import digest, make_library, tag

from genrefy_tagger.writing.tags import read_tags


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One dry run's JSON plan and a pristine copy of its library (copied per test)."""
    base = tmp_path_factory.mktemp("plan")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENREFY_STATE_DIR", str(base / "state"))
        library = make_library(base / "Music")
        report = base / "plan.json"
        tag("--dry-run", "--min-confidence", "0", "--report", str(report), str(library))
    return library, json.loads(report.read_text())


@pytest.fixture
def plan(made, tmp_path: Path) -> tuple[Path, dict]:
    """A fresh copy of the library (same mtimes) and its plan, re-rooted there."""
    import shutil

    source, data = made
    library = tmp_path / "Music"
    shutil.copytree(source, library)  # copy2 keeps mtimes, so the plan still matches
    data = json.loads(json.dumps(data).replace(str(source), str(library)))
    return library, data


def save(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data))
    return path


def row(data: dict, name: str) -> dict:
    return next(r for r in data["rows"] if r["path"].endswith(name))


def test_apply_writes_exactly_the_plan_then_undo(plan, tmp_path: Path):
    library, data = plan
    row(data, "00 song.mp3").update(proposed=["Jazz"], edited=True)
    row(data, "01 song.flac")["action"] = "skip"
    data["rows"] = [r for r in data["rows"] if not r["path"].endswith("03 song.wav")]  # removed
    kept = row(data, "02 song.ogg")
    before = digest(library)
    result = tag("--apply", str(save(data, tmp_path / "p.json")))
    assert result.exit_code == 0, result.output
    assert "6 rows: 2 tagged, 0 unchanged, 0 skipped, 4 left alone" in result.output
    mp3 = library / "Artist 0" / "00 song.mp3"
    assert read_tags(mp3).genres == ("Jazz",) and read_tags(mp3).provenance is None
    ogg = Path(kept["path"])
    assert read_tags(ogg).genres == tuple(kept["proposed"])
    assert f"confidence={kept['confidence']:.3f}" in read_tags(ogg).provenance
    after = digest(library)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"Artist 0/00 song.mp3", "Artist 0/02 song.ogg"}
    assert mutagen.File(ogg) is not None
    journal = next(line.split()[1] for line in result.output.splitlines() if "journal:" in line)
    assert tag("--undo", journal).exit_code == 0
    assert all(read_tags(library / k).genres == () for k in changed)
    again = tag("--apply", str(tmp_path / "p.json"))  # the undo changed the files since
    assert "2 skipped" in again.output


def test_files_changed_since_are_skipped(plan, tmp_path: Path):
    library, data = plan
    flac = library / "Artist 1" / "01 song.flac"
    audio = mutagen.File(flac)
    audio["title"] = ["changed by someone"]
    audio.save()
    result = tag("--apply", str(save(data, tmp_path / "p.json")))
    assert result.exit_code == 0, result.output
    assert "skipped" in next(line for line in result.output.splitlines() if "01 song.flac" in line)
    assert "changed since the plan was made" in result.output
    assert read_tags(flac).genres == ()
    assert "3 tagged" in result.output


def test_dry_run_apply_writes_nothing(plan, tmp_path: Path):
    library, data = plan
    before = digest(library)
    result = tag("--apply", str(save(data, tmp_path / "p.json")), "--dry-run")
    assert result.exit_code == 0 and "4 would tag" in result.output
    assert digest(library) == before


BAD = {
    "unknown column": (lambda d: d["rows"][0].update(genre="Rock"), "unknown column(s) ['genre']"),
    "genre not a string": (lambda d: d["rows"][0].update(proposed=["Rock", 3]), "list of strings"),
    "genres not a list": (lambda d: d["rows"][0].update(proposed="Rock"), "list of strings"),
    "outside the folder": (
        lambda d: d["rows"][0].update(path=d["root"] + "/../elsewhere.mp3"),
        "outside the plan's folder",
    ),
    "duplicate": (lambda d: d["rows"].append(dict(d["rows"][0])), "duplicate of row 1"),
    "no fingerprint": (lambda d: d["rows"][0].pop("fingerprint"), "size, mtime and fingerprint"),
    "unknown action": (lambda d: d["rows"][0].update(action="write"), "'action' must be one of"),
    "not a plan": (lambda d: d.update(rows={"a": 1}), "expected a genrefy report"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_plans_are_refused_before_anything_is_written(plan, tmp_path: Path, case: str):
    library, data = plan
    edit, message = BAD[case]
    edit(data)
    before = digest(library)
    result = tag("--apply", str(save(data, tmp_path / "p.json")))
    assert result.exit_code == 2, result.output
    assert message in result.output and "nothing written" in result.output
    assert digest(library) == before
    assert not (tmp_path / "state" / "journal").exists()


def test_csv_plan_edited_by_hand(made, tmp_path: Path):
    """A CSV report, edited in a spreadsheet, applied with the library as the plan's folder."""
    import shutil

    source, _ = made
    library = tmp_path / "Music"
    shutil.copytree(source, library)
    report = tmp_path / "reports" / "r.csv"
    tag("--dry-run", "--min-confidence", "0", "--report", str(report), str(library))
    rows = list(csv.DictReader(report.open()))
    wav = next(r for r in rows if r["path"].endswith("03 song.wav"))
    wav.update(proposed="Rock; Blues", edited="true")
    for r in rows:
        if r["action"] == "tag" and r is not wav:
            r["action"] = "skip"
    with report.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "edited"])
        writer.writeheader()
        writer.writerows(rows)
    refused = tag("--apply", str(report))  # the CSV's own folder is not the library's
    assert refused.exit_code == 2 and "outside the plan's folder" in refused.output
    result = tag("--apply", str(report), str(library))
    assert result.exit_code == 0, result.output
    assert "1 tagged" in result.output
    assert read_tags(wav["path"]).genres == ("Rock", "Blues")


def test_apply_loads_no_model(plan, tmp_path: Path):
    library, data = plan
    path = save(data, tmp_path / "p.json")
    code = (
        "import sys\n"
        "from genrefy_tagger.cli import main\n"
        f"try:\n    main(['--apply', {str(path)!r}])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = ('tensorflow', 'keras', 'librosa', 'ai_edge_litert')\n"
        "print('EXIT', code, 'HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "EXIT 0 HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "4 tagged" in out.stdout


def test_a_hard_linked_file_in_a_plan_is_skipped_and_the_dry_run_says_so(plan, tmp_path: Path):
    import os

    library, data = plan
    flac = library / "Artist 1" / "01 song.flac"
    os.link(flac, tmp_path / "seeding copy.flac")  # a link keeps mtime and size: still planned
    save(data, tmp_path / "p.json")

    def line(out: str) -> str:
        return next(x for x in out.splitlines() if "01 song.flac" in x)

    dry = tag("--apply", str(tmp_path / "p.json"), "--dry-run")
    assert dry.exit_code == 0 and line(dry.output).startswith("skipped")
    assert "has 2 hard links, left unchanged" in line(dry.output)
    real = tag("--apply", str(tmp_path / "p.json"))
    assert real.exit_code == 0, real.output
    assert line(real.output).startswith("skipped") and "3 tagged" in real.output
    assert "1 skipped" in real.output and read_tags(flac).genres == ()
