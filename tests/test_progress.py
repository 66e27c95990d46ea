"""The progress bar on a real terminal (a pseudo-terminal): N of M files, rate, time left.

``genrefy-tag`` and ``beet genrefy`` run as real processes with their stderr on a pty,
as a user's terminal would be; a pipe gets no bar, and ``-q`` silences it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from audiofiles import make_audio

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 5
#: What the bar shows while the run goes on: ``3/5 files [00:01<00:00, 2.10file/s]``.
BAR = re.compile(r"(\d+)/(\d+) files \[[\d:]+<([\d:]+|\?), +([\d.]+|\?)(file/s|s/file)\]")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "Music"
    for i in range(N_FILES):
        make_audio(root / f"{i:02d} song.flac", seconds=6.5, seed=i)
    return root


def on_a_terminal(cmd: list[str], env: dict[str, str]) -> tuple[str, str, int]:
    """Run ``cmd`` with stderr on a pseudo-terminal: (stdout, what the terminal showed, rc)."""
    master, slave = pty.openpty()
    # A real terminal has a size; a fresh pty's is 0 × 0, where tqdm would draw nothing.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    stdout, _ = proc.communicate(timeout=300)
    return stdout.decode(), shown.decode(errors="replace"), proc.returncode


def environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "GENREFY_STATE_DIR": str(tmp_path / "state")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_genrefy_tag_shows_n_of_m_files_rate_and_time_left(
    library: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "genrefy_tagger", "--model", str(tiny_bundle), "-j", "1"]
    stdout, shown, rc = on_a_terminal([*cmd, "--dry-run", str(library)], environment(tmp_path))
    assert rc == 0, shown
    bars = BAR.findall(shown)
    assert bars, shown
    assert {total for _, total, *_ in bars} == {str(N_FILES)}
    assert (str(N_FILES), str(N_FILES)) in {(done, total) for done, total, *_ in bars}
    assert any(left != "?" and rate != "?" for _, _, left, rate, _ in bars), shown
    assert stdout.startswith("would tag") and "files [" not in stdout  # the bar is stderr's

    stdout, shown, rc = on_a_terminal([*cmd, "-q", str(library)], environment(tmp_path))
    assert rc == 0 and not BAR.search(shown) and shown == ""
    assert stdout.startswith(f"{N_FILES} files: ")


def test_no_bar_when_stderr_is_not_a_terminal(
    library: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "genrefy_tagger", "--model", str(tiny_bundle), "-j", "1"]
    out = subprocess.run(
        [*cmd, "--dry-run", str(library)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(tmp_path),
    )
    assert out.returncode == 0 and out.stderr == ""


def test_beet_genrefy_shows_the_bar_and_q_silences_it(
    library: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    pytest.importorskip("beets")
    (tmp_path / "config.yaml").write_text(
        f"directory: {tmp_path / 'music'}\nlibrary: {tmp_path / 'lib.db'}\n"
        "plugins: [genrefy]\ncreate_backup_before_migrations: no\nimport:\n  write: no\n"
        f"genrefy:\n  model: {tiny_bundle}\n  min_confidence: 0\n  jobs: 1\n  auto: no\n"
    )
    env = {**environment(tmp_path), "BEETSDIR": str(tmp_path), "HOME": str(tmp_path)}
    beet = [sys.executable, "-c", "import sys; from beets.ui import main; sys.exit(main())"]
    shutil.copytree(library, tmp_path / "in")
    subprocess.run([*beet, "import", "-A", "-q", str(tmp_path / "in")], env=env, check=True)

    stdout, shown, rc = on_a_terminal([*beet, "genrefy", "--pretend"], env)
    assert rc == 0, shown
    bars = BAR.findall(shown)
    assert bars and {total for _, total, *_ in bars} == {str(N_FILES)}, shown
    assert (str(N_FILES), str(N_FILES)) in {(done, total) for done, total, *_ in bars}
    assert stdout.count(" → ") == N_FILES

    stdout, shown, rc = on_a_terminal([*beet, "genrefy", "--pretend", "-q"], env)
    assert rc == 0 and not BAR.search(shown), shown
    assert stdout.count(" → ") == N_FILES
