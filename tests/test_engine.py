"""The analysis engine on real files of every kind, including bad ones.

Uses the small real bundle built by the ``tiny_bundle`` fixture: these tests are
about decoding, windowing and robustness, not accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from audiofiles import ALL_KINDS, make_audio

from genrefy_tagger.listening.engine import Analyzer, analyse_paths
from genrefy_tagger.reading.walk import walk
from genrefy_tagger.reading.windows import WindowPolicy


@pytest.fixture(scope="module")
def analyzer(tiny_bundle: Path) -> Analyzer:
    return Analyzer(tiny_bundle, min_confidence=0.0)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_format_is_analysed(analyzer: Analyzer, tmp_path: Path, kind: str):
    path = make_audio(tmp_path / f"song.{kind}", seconds=7.0)
    result = analyzer.analyse(path)
    assert result.error is None, result.error
    assert result.decision is not None and result.decision.n_windows == 2
    assert sum(s for _, s in result.decision.ranked) == pytest.approx(1.0, abs=1e-5)
    assert result.duration == pytest.approx(7.0, abs=0.1)


@pytest.mark.parametrize(
    ("channels", "rate"), [(1, 8000), (2, 22050), (6, 44100), (2, 48000), (2, 96000)]
)
def test_channels_and_sample_rates(analyzer: Analyzer, tmp_path: Path, channels, rate):
    path = make_audio(tmp_path / "x.flac", seconds=6.5, channels=channels, sample_rate=rate)
    result = analyzer.analyse(path)
    assert result.error is None and result.decision.n_windows == 2


def test_long_track_cost_is_bounded(analyzer: Analyzer, tmp_path: Path):
    path = make_audio(tmp_path / "long.flac", seconds=300.0, channels=1)
    result = analyzer.analyse(path)
    assert result.decision.n_windows == 10
    every = Analyzer(analyzer.bundle, policy=WindowPolicy(max_windows=None)).analyse(path)
    assert every.decision.n_windows == 100


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (
            lambda p: p.write_text("not audio at all\n" * 50),
            "not audio that FFmpeg or libsndfile can read",
        ),
        (
            lambda p: p.write_bytes(os.urandom(20000)),
            "not audio that FFmpeg or libsndfile can read",
        ),
    ],
    ids=["zero-bytes", "text-as-mp3", "random-bytes"],
)
def test_bad_files_fail_with_one_line_reason(analyzer, tmp_path, make, expect):
    path = tmp_path / "bad.mp3"
    make(path)
    result = analyzer.analyse(path)
    assert result.decision is None and expect in result.error
    assert "\n" not in result.error and str(tmp_path) not in result.error


def test_truncated_and_corrupt_files(analyzer: Analyzer, tmp_path: Path):
    good = make_audio(tmp_path / "good.flac", seconds=20.0)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(data[: len(data) // 2])
    result = analyzer.analyse(truncated)
    # Half a file still holds audio: analysed from what is there, or a clear failure.
    assert (result.decision is not None) or ("decode" in (result.error or ""))
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(data[:4] + os.urandom(len(data) - 4))
    assert analyzer.analyse(corrupt).error


def test_short_silent_and_clipped(analyzer: Analyzer, tmp_path: Path):
    short = analyzer.analyse(make_audio(tmp_path / "short.wav", seconds=2.0))
    assert short.decision is None and short.error is None and "too short" in short.note
    assert short.unsure
    silent = analyzer.analyse(make_audio(tmp_path / "silent.wav", seconds=9.0, kind="silence"))
    assert silent.decision is None and "silent" in silent.note
    clipped = analyzer.analyse(make_audio(tmp_path / "clip.wav", seconds=9.0, kind="clipped"))
    assert clipped.decision is not None and clipped.decision.n_windows == 3


def test_silent_windows_are_skipped(analyzer: Analyzer, tmp_path: Path):
    import soundfile as sf

    y = np.zeros(22050 * 12, np.float32)
    y[22050 * 6 :] = 0.3 * np.sin(np.arange(22050 * 6) * 0.05)
    sf.write(tmp_path / "half.wav", y, 22050)
    result = analyzer.analyse(tmp_path / "half.wav")
    assert result.n_silent == 2 and result.decision.n_windows == 2


def test_vanished_and_unicode_paths(analyzer: Analyzer, tmp_path: Path):
    gone = make_audio(tmp_path / "gone.mp3", seconds=4.0)
    gone.unlink()
    assert "not found" in analyzer.analyse(gone).error
    odd = make_audio(tmp_path / "Beyoncé — Déjà vu" / "01 ñ track.ogg", seconds=4.0)
    assert analyzer.analyse(odd).decision is not None


def test_parallel_equals_serial_and_keeps_order(tiny_bundle: Path, tmp_path: Path):
    paths = [make_audio(tmp_path / f"{i:02d}.flac", seconds=4 + i, seed=i) for i in range(5)]
    paths.insert(2, tmp_path / "missing.mp3")
    serial = list(analyse_paths(paths, bundle_path=tiny_bundle, jobs=1, min_confidence=0))
    parallel = list(analyse_paths(paths, bundle_path=tiny_bundle, jobs=2, min_confidence=0))
    assert [r.path for r in parallel] == paths
    assert parallel[2].error and serial[2].error
    for a, b in zip(serial, parallel, strict=True):
        if a.decision:
            assert a.decision.genre == b.decision.genre
            assert dict(a.decision.ranked) == pytest.approx(dict(b.decision.ranked), abs=1e-5)


def test_walk_order_hidden_symlink_loops(tmp_path: Path):
    root = tmp_path / "lib"
    for name in ("b/2.mp3", "a/1.flac", "a/.hidden.mp3", ".trash/x.mp3", "a/cover.jpg", "c.ogg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    exts = {".mp3", ".flac", ".ogg"}
    found = [f.path.relative_to(root).as_posix() for f in walk([root], extensions=exts)]
    assert found == ["a/1.flac", "b/2.mp3", "c.ogg"]
    top = [f.path.name for f in walk([root], extensions=exts, recursive=False)]
    assert top == ["c.ogg"]
    named = list(walk([root / "a/cover.jpg", root / "nope.mp3"], extensions=exts))
    assert "not a supported" in named[0].problem and "not found" in named[1].problem


def test_walk_names_broken_links_and_pipes_with_music_names(tmp_path: Path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "ok.mp3").write_bytes(b"x")
    (root / "moved.flac").symlink_to(tmp_path / "external-drive" / "moved.flac")
    (root / "linked.mp3").symlink_to(root / "ok.mp3")
    (root / "notes.txt").symlink_to(tmp_path / "gone.txt")  # not music: not our business
    (root / "album.mp3").mkdir()  # a folder with a music name is walked, not reported
    (root / "album.mp3" / "t.ogg").write_bytes(b"x")
    os.mkfifo(root / "pipe.mp3")
    found = {f.path.name: f.problem for f in walk([root], extensions={".mp3", ".flac", ".ogg"})}
    assert list(found) == ["t.ogg", "linked.mp3", "moved.flac", "ok.mp3", "pipe.mp3"]
    assert found["t.ogg"] is None and found["linked.mp3"] is None and found["ok.mp3"] is None
    assert found["moved.flac"].startswith("broken link (its target ")
    assert "external-drive" in found["moved.flac"]
    assert found["pipe.mp3"] == "not a regular file (a pipe, socket or device)"
