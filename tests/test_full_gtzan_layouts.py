"""A user's own GTZAN copy, end to end: ``genrefy-train`` prepare → train → export on the
original archive's layout (``genres/<g>/<g>.000NN.au``) and on Kaggle's
(``Data/genres_original/<g>/<g>.000NN.wav`` with its unreadable ``jazz.00054.wav``), then
``genrefy-tag --model <bundle>`` on a file.

Both copies are built from a few real clips of the shared folder, re-encoded the way each
copy stores them (the original archive: Sun/NeXT ``.au``, 16-bit big-endian PCM, 22050 Hz
mono; Kaggle: 16-bit WAV), so discovery, reading and the packaged fault-filtered lists are
exercised exactly as on a user's machine. The configuration is tiny (one epoch of 32
windows): this checks that the path works, not what the model learns.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrefy_tagger.reading.config import GTZAN_GENRES

pytestmark = pytest.mark.shared  # built from the real clips of ../shared/gtzan

ROOT = Path(__file__).resolve().parents[1]
GENRES = ("blues", "classical", "jazz", "rock")
#: Per genre: clips of ff-train (the development clips) and one of ff-test (held out).
PER_ROLE = {"train": 3, "test": 1}


def _subset(gtzan: Path) -> list[tuple[str, str, Path]]:
    """(track id, genre, shared path) of the first clips of each role, per genre."""
    with open(gtzan / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for genre in GENRES:
        for role, n in PER_ROLE.items():
            picked = sorted(
                r["track_id"]
                for r in rows
                if r["genre"] == genre and r["fault_filtered_split"] == role
            )[:n]
            chosen += [(t, genre, gtzan / "genres" / genre / f"{t}.ogg") for t in picked]
    return chosen


def _corrupt_stand_in(path: Path) -> None:
    """Kaggle's ``jazz.00054.wav``: a WAV-sized file that no decoder can read.

    A RIFF/WAVE signature followed by noise, with no ``fmt`` or ``data`` chunk: libsndfile
    and FFmpeg both refuse it, as they refuse the real file.
    """
    noise = np.random.default_rng(54).bytes(1_323_000)
    path.write_bytes(b"RIFF" + len(noise).to_bytes(4, "little") + b"WAVE" + noise)


@pytest.fixture(scope="module", params=["original", "kaggle"])
def user_copy(
    request: pytest.FixtureRequest, gtzan_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """A user's GTZAN root in one of the two published layouts."""
    import soundfile as sf

    layout = request.param
    root = tmp_path_factory.mktemp(f"gtzan-{layout}")
    base = root / "genres" if layout == "original" else root / "Data" / "genres_original"
    for tid, genre, src in _subset(gtzan_dir):
        data, rate = sf.read(str(src), dtype="float32", always_2d=False)
        assert rate == 22050 and data.ndim == 1  # GTZAN is 22050 Hz mono
        (base / genre).mkdir(parents=True, exist_ok=True)
        if layout == "original":
            sf.write(str(base / genre / f"{tid}.au"), data, rate, format="AU", subtype="PCM_16")
        else:
            sf.write(str(base / genre / f"{tid}.wav"), data, rate, format="WAV", subtype="PCM_16")
    if layout == "kaggle":
        _corrupt_stand_in(base / "jazz" / "jazz.00054.wav")
    return layout, root


def test_the_written_files_are_what_the_copies_hold(user_copy: tuple[str, Path]) -> None:
    import soundfile as sf

    layout, root = user_copy
    pattern = "genres/*/*.au" if layout == "original" else "Data/genres_original/*/*.wav"
    files = sorted(root.glob(pattern))
    assert len(files) == len(GENRES) * sum(PER_ROLE.values()) + (layout == "kaggle")
    readable = [f for f in files if f.name != "jazz.00054.wav"]
    info = sf.info(str(readable[0]))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    if layout == "original":
        assert info.format == "AU" and info.endian == "FILE"  # AU is big-endian by definition
        assert readable[0].read_bytes()[:4] == b".snd"
    else:
        assert info.format == "WAV"
        with pytest.raises(sf.LibsndfileError):
            sf.info(str(root / "Data" / "genres_original" / "jazz" / "jazz.00054.wav"))


@pytest.mark.slow
def test_train_on_a_users_copy_then_tag_with_the_bundle(
    user_copy: tuple[str, Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from model_training.cli import main

    layout, root = user_copy
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    common = ["--out", str(run), "--cache", str(tmp_path / "cache"), "--jobs", "1"]
    fit = ["--epochs", "1", "--patience", "1", "--windows-per-epoch", "32"]
    steps = [
        # The data folder is the user's root; the fault-filtered lists are the packaged ones.
        ["prepare", "--data", str(root), "--folds", "2", "--augment", "1"],
        ["train", *fit],
        ["export", "--bundle", str(bundle), "--model-version", "0.0.1-test"],
    ]
    outputs = []
    for args in steps:
        result = CliRunner().invoke(main, [*args, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)

    plan = json.loads((run / "plan.json").read_text())
    assert plan["layout"] == layout and plan["clips"] == len(GENRES) * sum(PER_ROLE.values())
    assert plan["fault_filtered_lists"].endswith("splits")  # the packaged copy
    # Only some listed clips are here, so the split is k-fold with ff-test held out.
    assert len(plan["plan"]["test"]) == len(GENRES) * PER_ROLE["test"]
    assert all(tid.split(".")[0] in GENRES for tid in plan["plan"]["test"])
    if layout == "kaggle":
        # The unreadable clip is named, with why, and the run went on without it.
        (skipped,) = plan["skipped"]
        assert skipped["clip"].endswith("jazz.00054.wav")
        assert "can read" in skipped["reason"]
        assert "jazz.00054.wav" in outputs[0] and "not audio" in outputs[0]
    else:
        assert plan["skipped"] == []
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["model_version"] == "0.0.1-test" and meta["checks"]["max_abs_diff"] < 1e-4
    assert f"GTZAN ({layout} layout)" in meta["training_data"]["source"]

    # The bundle tags a file through genrefy-tag, as a user would run it. Sun AU holds no
    # tags (genrefy-tag leaves it "unchanged"), so the song is a held-out clip as FLAC.
    import soundfile as sf

    (held_out,) = [t for t in plan["plan"]["test"] if t.startswith("rock.")]
    clip = next(root.rglob(f"{held_out}.*"))
    song = tmp_path / "music" / "song.flac"
    song.parent.mkdir()
    data, rate = sf.read(str(clip), dtype="float32")
    sf.write(str(song), data, rate, format="FLAC")
    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["--dry-run", "-q", "-j", "1", "--model", str(bundle), "--report", str(report)]
    tagged = subprocess.run(
        [sys.executable, "-m", "genrefy_tagger", *args, str(song)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    rows = json.loads(report.read_text())
    assert rows["format"] == "genrefy-plan"
    rows = rows["rows"]
    (row,) = rows
    assert Path(row["path"]).name == song.name
    # The bundle listened and decided: a genre with a confidence (written or unsure).
    assert row["action"] in ("tag", "unsure"), row
    assert row["confidence"] is not None and 0 < row["confidence"] <= 1
    names = [g for g, _ in row["runners_up"]] + row["proposed"]  # written names: "Hip-Hop"
    assert names and all(g.lower().replace("-", "") in GTZAN_GENRES for g in names), names
