"""``genrefy-tag`` end to end: Click's runner and real subprocesses, real files, a real bundle."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest
from audiofiles import make_audio
from click.testing import CliRunner

from genrefy_tagger.cli import main
from genrefy_tagger.tags import read_tags

KINDS = ("mp3", "flac", "ogg", "m4a", "opus", "wav")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "Music"
    for i, kind in enumerate(KINDS):
        make_audio(root / f"Artist {i}" / f"{i:02d} song.{kind}", seconds=6.5, seed=i)
    return root


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def lines_starting(text: str, prefix: str) -> int:
    return sum(line.startswith(prefix) for line in text.splitlines())


def tag(args: list[str], bundle: Path):
    return CliRunner().invoke(main, ["--model", str(bundle), "-j", "1", *args])


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['genrefy-tag', '--help']\n"
        "try:\n    runpy.run_module('genrefy_tagger', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('tensorflow', 'keras', 'librosa', 'ai_edge_litert')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--dry-run" in out.stdout and "HEAVY []" in out.stdout


def test_dry_run_reports_and_touches_nothing(library: Path, tiny_bundle: Path, tmp_path: Path):
    before = digest(library)
    report = tmp_path / "report.json"
    result = tag(
        ["--dry-run", "--min-confidence", "0", "--report", str(report), str(library)], tiny_bundle
    )
    assert result.exit_code == 0, result.output
    assert lines_starting(result.output, "would tag") == len(KINDS)
    assert f"{len(KINDS)} files: {len(KINDS)} would tag, 0 unchanged, 0 unsure, 0 failed" in (
        result.output
    )
    assert digest(library) == before
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == len(KINDS) and {r["action"] for r in rows} == {"tag"}
    assert all(r["proposed"] and 0 <= r["confidence"] <= 1 and r["runners_up"] for r in rows)
    assert not (tmp_path / "state" / "journal").exists()  # a dry run journals nothing


def test_tag_then_undo(library: Path, tiny_bundle: Path):
    first = tag(["--min-confidence", "0", str(library)], tiny_bundle)
    assert first.exit_code == 0, first.output
    for path in library.rglob("*.*"):
        state = read_tags(path)
        assert len(state.genres) == 1 and "tiny-test@0" in state.provenance
        assert mutagen.File(path) is not None
    journal = next(
        line.split()[1] for line in first.output.splitlines() if line.startswith("journal:")
    )
    again = tag(["--min-confidence", "0", str(library)], tiny_bundle)
    assert f"{len(KINDS)} unchanged" in again.output  # already analysed by this model
    undone = CliRunner().invoke(main, ["--undo", journal])
    assert undone.exit_code == 0, undone.output
    assert lines_starting(undone.output, "restored") == len(KINDS)
    for path in library.rglob("*.*"):
        assert read_tags(path).genres == () and read_tags(path).provenance is None


def test_existing_genres_need_overwrite(tmp_path: Path, tiny_bundle: Path):
    path = make_audio(tmp_path / "a.flac", seconds=6.5)
    audio = mutagen.File(path)
    audio["genre"] = ["Shoegaze"]
    audio["title"] = ["Keep me"]
    audio.save()
    kept = tag(["-v", "--min-confidence", "0", str(path)], tiny_bundle)
    assert "has a genre" in kept.output and read_tags(path).genres == ("Shoegaze",)
    replaced = tag(["--min-confidence", "0", "--overwrite", "--top-k", "2", str(path)], tiny_bundle)
    assert replaced.exit_code == 0 and "Shoegaze →" in replaced.output
    after = mutagen.File(path)
    assert len(after["genre"]) == 2 and after["title"] == ["Keep me"]


def test_unsure_writes_nothing(library: Path, tiny_bundle: Path):
    before = digest(library)
    result = tag(["--min-confidence", "1.0", str(library)], tiny_bundle)
    assert result.exit_code == 0 and f"{len(KINDS)} unsure" in result.output
    assert digest(library) == before


def test_bad_files_fail_the_exit_code_but_not_the_run(
    library: Path, tiny_bundle: Path, tmp_path: Path
):
    (library / "broken.mp3").write_text("this is not audio")
    (library / "empty.flac").write_bytes(b"")
    make_audio(library / "short.wav", seconds=1.0)
    report = tmp_path / "r.csv"
    result = tag(["--min-confidence", "0", "--report", str(report), str(library)], tiny_bundle)
    assert result.exit_code == 1
    assert "2 failed" in result.output and "1 unsure" in result.output
    assert f"{len(KINDS)} tagged" in result.output
    lines = report.read_text().splitlines()
    assert lines[0].startswith("path,action") and len(lines) == len(KINDS) + 4


def test_usage_errors_exit_2(tmp_path: Path, tiny_bundle: Path):
    runner = CliRunner()
    assert runner.invoke(main, []).exit_code == 2
    assert runner.invoke(main, ["--report", "x.txt", str(tmp_path)]).exit_code == 2
    bad_model = tmp_path / "not-a-model"
    bad_model.mkdir()
    result = runner.invoke(main, ["--model", str(bad_model), str(tmp_path)])
    assert result.exit_code == 2 and "bundle" in result.output


def test_subprocess_run_in_parallel(library: Path, tiny_bundle: Path):
    cmd = [
        sys.executable,
        "-m",
        "genrefy_tagger",
        "--model",
        str(tiny_bundle),
        "-j",
        "2",
        "--min-confidence",
        "0",
        "--dry-run",
        str(library),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert lines_starting(out.stdout, "would tag") == len(KINDS)
    assert "Traceback" not in out.stderr
