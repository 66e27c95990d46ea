"""What ``pip install .`` gives a user: the wheel holds every shipped model file, and the
tagger runs from it alone (the README's first command).

Editable installs and the source tree hide a file that the package data leaves out: the
shipped musicnn model once lacked ``mel_basis.npy`` in the wheel, so every file failed
on a fresh machine while every test here passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from audiofiles import make_audio

ROOT = Path(__file__).resolve().parents[1]
#: What the installed package needs at run time besides its modules.
DATA = ("genrefy_tagger/models", "genrefy_tagger/reporting/review.html", "model_training/splits")


def tracked_files() -> list[str]:
    """The repository's files under ``DATA``."""
    out = subprocess.run(["git", "ls-files", "--", *DATA], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return sorted(line for line in out.splitlines() if line)


def source_copy(dest: Path) -> Path:
    """The files a clean clone would hold, with uncommitted work: a build in the working
    tree reuses its ``build/`` folder, whose stale copies would hide a file left out."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout  # fmt: skip
    for name in filter(None, os.fsdecode(listed).split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = source_copy(tmp_path_factory.mktemp("src"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("genrefy-*.whl")
    return path


def test_wheel_holds_every_shipped_model_file(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in tracked_files() if f not in names and "__pycache__" not in f]
    assert not missing, f"left out of the wheel (pyproject's package-data): {missing}"


def test_the_installed_wheel_tags_a_file_on_its_own(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    music = tmp_path / "Music"
    make_audio(music / "a.flac", seconds=8.0)
    # No source tree on the path (cwd is elsewhere), a fresh state: no cache to lean on.
    env = dict(os.environ, PYTHONPATH=str(site), GENREFY_STATE_DIR=str(tmp_path / "state"))
    code = "import genrefy_tagger; print(genrefy_tagger.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(site)), where.stdout
    for model in ("musicnn", "hybrid"):
        run = subprocess.run(
            [sys.executable, "-m", "genrefy_tagger", "--dry-run", "-j", "1", "--model", model,
             "--min-confidence", "0", str(music)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, (model, run.stdout, run.stderr)
        assert "1 file: 1 would tag, 0 unchanged, 0 unsure, 0 failed" in run.stdout, run.stdout
