"""``genrefy-tag`` end to end: Click's runner and real subprocesses, real files, a real bundle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest
from audiofiles import make_audio
from click.testing import CliRunner

from genrefy_tagger.cli import main
from genrefy_tagger.writing.tags import read_tags, write_genres

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
        "heavy = ('tensorflow', 'keras', 'librosa', 'ai_edge_litert', 'ray', 'pyarrow')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--dry-run" in out.stdout and "HEAVY []" in out.stdout


def test_help_quotes_the_shipped_bundles_own_defaults():
    from genrefy_tagger.listening.model import bundled_models, load_bundle

    text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    for name, folder in bundled_models().items():
        bundle = load_bundle(folder)
        assert f"{bundle.min_confidence:.2f} for {name}" in text
        assert f"{bundle.max_windows} for {name}" in text


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
    assert f"{len(KINDS)} files: {len(KINDS)} restored, 0 skipped, 0 failed" in undone.output
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
    assert "XNNPACK" not in out.stdout + out.stderr  # LiteRT's log line is silenced


def test_quiet_prints_only_the_summary(library: Path, tmp_path: Path):
    """With the real shipped model, in a real process: no third-party log lines either."""
    cmd = [sys.executable, "-m", "genrefy_tagger", "-q", "-j", "1", "--model", "hybrid"]
    out = subprocess.run([*cmd, str(library)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    summary, journal = out.stdout.splitlines()
    assert summary.startswith(f"{len(KINDS)} files: ") and journal.startswith("journal: ")


def test_missing_paths_are_a_usage_error_listing_them(library: Path, tmp_path: Path):
    result = tag([str(library), str(tmp_path / "nope"), str(tmp_path / "gone.mp3")], Path("x"))
    assert result.exit_code == 2
    assert f"no such file or folder: {tmp_path / 'nope'}, {tmp_path / 'gone.mp3'}" in (
        result.output
    )
    assert not (tmp_path / "state").exists()


def test_an_unknown_model_is_a_usage_error_listing_the_models(library: Path):
    result = CliRunner().invoke(main, ["--model", "rock-detector", str(library)])
    assert result.exit_code == 2
    assert "unknown model 'rock-detector': use one of hybrid, musicnn" in result.output


@pytest.mark.parametrize("how", ["GENREFY_STATE_DIR", "--journal"])
def test_an_unwritable_journal_location_stops_before_any_analysis(
    how: str, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = digest(library)
    extra = ["--journal", str(blocker / "j.jsonl")] if how == "--journal" else []
    if how == "GENREFY_STATE_DIR":
        monkeypatch.setenv("GENREFY_STATE_DIR", str(blocker / "state"))
    result = CliRunner().invoke(main, [*extra, "--model", "hybrid", str(library)])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write the journal ")
    assert len(result.output.splitlines()) == 1  # one line; nothing was analysed
    assert digest(library) == before


def test_a_run_that_changes_nothing_leaves_no_journal(library: Path, tmp_path: Path):
    args = ["--model", "hybrid", "-j", "1", "--min-confidence", "1", str(library)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and f"{len(KINDS)} unsure" in result.output
    assert "journal:" not in result.output
    assert list((tmp_path / "state" / "journal").iterdir()) == []


def test_a_new_policy_on_analysed_files_hints_at_force(library: Path):
    from genrefy_tagger.listening.model import load_bundle

    tag = load_bundle("hybrid").tag  # e.g. gtzan-hybrid@1.2.0
    runner = CliRunner()
    args = ["--model", "hybrid", "--min-confidence", "0", "-j", "1"]
    assert runner.invoke(main, [*args, str(library)]).exit_code == 0
    again = runner.invoke(main, [*args, str(library)])
    assert "--force" not in again.output  # same policy: nothing to say
    wider = runner.invoke(main, [*args, "--top-k", "2", str(library)])
    assert (
        f"{len(KINDS)} files already analysed by {tag} were left alone; "
        "use --force to apply --top-k 2"
    ) in wider.output
    shown = runner.invoke(main, [*args, "-v", "--top-k", "2", str(library)])
    assert f"(already analysed by {tag}; use --force to apply --top-k 2)" in (shown.output)
    edited = sorted(library.rglob("*.flac"))[0]  # someone retagged it since
    write_genres(edited, ["Jazz"], provenance=read_tags(edited).provenance)
    overwrite = runner.invoke(main, [*args, "--overwrite", str(library)])
    assert (
        f"1 file already analysed by {tag} was left alone; use --force to apply --overwrite"
    ) in overwrite.output
    forced = runner.invoke(main, [*args, "--top-k", "2", "--force", "--overwrite", str(library)])
    assert "use --force" not in forced.output
    assert all(len(read_tags(p).genres) == 2 for p in library.rglob("*.*"))


def test_reasons_do_not_repeat_the_path(library: Path, tiny_bundle: Path, tmp_path: Path):
    (library / "broken.mp3").write_text("this is not audio")
    (library / "empty.flac").write_bytes(b"")
    report = tmp_path / "r.json"
    tag(["--report", str(report), str(library)], tiny_bundle)
    rows = json.loads(report.read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows  # a list, or a plan with rows
    reasons = [r["reason"] for r in rows if r["action"] == "failed"]
    assert len(reasons) == 2
    assert all(r and str(library) not in r and "broken.mp3" not in r for r in reasons)


def test_help_everywhere():
    from model_training.cli import main as train

    runner = CliRunner()
    for flag in ("-h", "--help"):
        assert "Exit status" in runner.invoke(main, [flag]).output
        listing = runner.invoke(train, [flag], terminal_width=80)
        assert listing.exit_code == 0, listing.output
        commands = listing.output.split("Commands:")[1].splitlines()
        assert len([c for c in commands if c.strip()]) >= 10
        assert not any(c.rstrip().endswith("...") for c in commands)  # nothing cut off
        for name in train.commands:
            sub = runner.invoke(train, [name, flag])
            assert sub.exit_code == 0 and sub.output.startswith("Usage: "), (name, sub.output)


def test_files_left_alone_on_purpose_are_skipped_not_failed(
    library: Path, tiny_bundle: Path, tmp_path: Path
):
    from genrefy_tagger.running.plan import read_plan

    files = sorted(p for p in library.rglob("*") if p.is_file())
    linked, locked = files[0], files[1]
    os.link(linked, tmp_path / "seeding copy")  # a second name outside the library
    locked.chmod(0o444)
    kept = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (linked, locked)}
    report = tmp_path / "r.json"
    dry = tag(["--dry-run", "--min-confidence", "0", "--report", str(report), str(library)],
              tiny_bundle)  # fmt: skip
    assert dry.exit_code == 0, dry.output
    rows = json.loads(report.read_text())["rows"]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name[linked.name]["action"] == "skipped"
    assert "has 2 hard links, left unchanged" in by_name[linked.name]["reason"]
    assert by_name[locked.name]["action"] == "skipped"
    assert by_name[locked.name]["reason"] == "read-only file, left unchanged"
    assert f"{len(files) - 2} would tag, 0 unchanged, 0 unsure, 2 skipped, 0 failed" in dry.output
    assert read_plan(report, library).rows  # a report with skipped rows is still a plan

    real = tag(["--min-confidence", "0", str(library)], tiny_bundle)
    assert real.exit_code == 0, real.output  # nothing failed
    assert lines_starting(real.output, "skipped") == 2
    assert f"{len(files) - 2} tagged, 0 unchanged, 0 unsure, 2 skipped, 0 failed" in real.output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in kept} == kept
    assert os.stat(linked).st_nlink == 2
