"""The analysis cache: real runs on real files, and the SQLite store itself."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import mutagen
import numpy as np
import pytest
from reviewlib import MODEL, make_library, tag

from genrefy_tagger.listening.engine import Analysis
from genrefy_tagger.running.cache import AnalysisCache, CachedPool, default_cache_path
from genrefy_tagger.writing.tags import read_tags


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return make_library(tmp_path / "Music")


def line_for(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if name in line)


def poison(path: Path, genre_index: int) -> int:
    """Make every cached analysis of ``path`` say one genre for sure; returns rows changed."""
    with sqlite3.connect(default_cache_path()) as db:
        rows = db.execute(
            "SELECT rowid, n_genres, probs FROM analyses WHERE path = ?", (str(path),)
        ).fetchall()
        for rowid, n_genres, blob in rows:
            probs = np.frombuffer(blob, dtype="<f8").reshape(-1, n_genres).copy()
            probs[:] = 0.0
            probs[:, genre_index] = 1.0
            db.execute("UPDATE analyses SET probs = ? WHERE rowid = ?", (probs.tobytes(), rowid))
    return len(rows)


def test_rerun_with_new_settings_is_answered_from_the_cache(library: Path):
    first = tag("--dry-run", "--min-confidence", "0", str(library))
    assert first.exit_code == 1  # the broken file
    with sqlite3.connect(default_cache_path()) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM analyses").fetchone()
    assert count == 5  # 4 analysed + the silent one (its note); never the failure
    mp3 = library / "Artist 0" / "00 song.mp3"
    assert poison(mp3, 5) == 1  # GTZAN genre 5: jazz
    # Another threshold and top-k: the stored probabilities are voted again.
    again = tag("--dry-run", "--min-confidence", "0.9", "--top-k", "2", str(library))
    assert "100%  (none) → Jazz; " in line_for(again.output, "00 song.mp3")
    assert "silent" in line_for(again.output, "silence.flac")
    # Another window policy is another key: analysed afresh.
    other = tag("--dry-run", "--min-confidence", "0", "--windows", "2", str(library))
    assert "Jazz" not in line_for(other.output, "00 song.mp3")
    # --force bypasses the cache and stores the fresh analysis over the stale one.
    forced = tag("--dry-run", "--min-confidence", "0", "--force", str(library))
    assert "Jazz" not in line_for(forced.output, "00 song.mp3")
    assert line_for(forced.output, "00 song.mp3") == line_for(first.output, "00 song.mp3")
    later = tag("--dry-run", "--min-confidence", "0", str(library))
    assert line_for(later.output, "00 song.mp3") == line_for(first.output, "00 song.mp3")


def test_a_changed_file_is_analysed_again(library: Path):
    tag("--dry-run", "--min-confidence", "0", str(library))
    flac = library / "Artist 1" / "01 song.flac"
    poison(flac, 5)
    audio = mutagen.File(flac)
    audio["title"] = ["edited since"]
    audio.save()
    again = tag("--dry-run", "--min-confidence", "0", str(library))
    assert "Jazz" not in line_for(again.output, "01 song.flac")


def test_a_genrefy_write_keeps_the_analysis_valid(library: Path):
    """Tags written by genrefy (audio verified identical) do not invalidate the analysis."""
    ogg = library / "Artist 0" / "02 song.ogg"
    tag("--dry-run", "--min-confidence", "0", str(library))
    poison(ogg, 5)
    written = tag("--min-confidence", "0", str(library))
    assert "→ Jazz" in line_for(written.output, "02 song.ogg")  # the real run reused it
    st = os.stat(ogg)
    with sqlite3.connect(default_cache_path()) as db:
        size, mtime_ns = db.execute(
            "SELECT size, mtime_ns FROM analyses WHERE path = ?", (str(ogg),)
        ).fetchone()
    assert (size, mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert read_tags(ogg).genres == ("Jazz",)
    with AnalysisCache(default_cache_path()) as cache:
        models = {m for (m,) in cache._db.execute("SELECT model FROM analyses")}
        policies = {p for (p,) in cache._db.execute("SELECT policy FROM analyses")}
        assert any(cache.get(ogg, m, p) for m in models for p in policies)


def test_an_undo_keeps_the_analyses_valid(library: Path, tmp_path: Path):
    """run, apply, undo, re-run: --undo changes only tags (audio verified identical), like
    the write it undoes, so the re-run is answered from the cache and listens to nothing."""
    plan = tmp_path / "plan.json"
    tag("--dry-run", "--min-confidence", "0", "--report", str(plan), str(library))
    applied = tag("--apply", str(plan))
    assert applied.exit_code == 0 and "4 tagged" in applied.output, applied.output
    (journal,) = (tmp_path / "state" / "journal").glob("*.jsonl")
    undone = tag("--undo", str(journal))
    assert undone.exit_code == 0 and "4 restored" in undone.output, undone.output
    songs = sorted(library.glob("Artist */*"))
    assert len(songs) == 4 and all(read_tags(p).genres == () for p in songs)
    analysed = [*songs, library / "Quiet" / "silence.flac"]
    with AnalysisCache(default_cache_path()) as cache, CachedPool(MODEL, cache=cache) as pool:
        for path in analysed:
            assert pool.result(pool.submit(path), path).error is None
        assert (pool.hits, pool.misses) == (len(analysed), 0)
    # The command line's re-run too: it votes from the stored (poisoned) probabilities.
    assert sum(poison(p, 5) for p in songs) == 4
    again = tag("--dry-run", "--min-confidence", "0", str(library))
    assert all("(none) → Jazz" in line_for(again.output, p.name) for p in songs), again.output


def test_clear_cache(library: Path):
    tag("--dry-run", "--min-confidence", "0", str(library))
    cleared = tag("--clear-cache")
    assert cleared.exit_code == 0 and "removed 5 stored analyses" in cleared.output
    with sqlite3.connect(default_cache_path()) as db:
        assert db.execute("SELECT COUNT(*) FROM analyses").fetchone() == (0,)


def fake(path: Path, seed: int) -> Analysis:
    probs = np.random.default_rng(seed).dirichlet(np.ones(10), size=3)
    return Analysis(path, duration=240.0, probabilities=probs)


def test_store_is_bounded_least_recently_used_first(tmp_path: Path):
    files = []
    for i in range(8):
        files.append(tmp_path / f"{i}.mp3")
        files[-1].write_bytes(b"x" * (i + 1))
    with AnalysisCache(tmp_path / "c.sqlite", max_rows=5) as cache:
        for i, f in enumerate(files):
            cache.put(fake(f, i), "m", "p", os.stat(f))
        hit = cache.get(files[0], "m", "p")  # the oldest, but just used
        assert hit is not None and np.allclose(hit.probabilities, fake(files[0], 0).probabilities)
    with AnalysisCache(tmp_path / "c.sqlite", max_rows=5) as cache:
        assert len(cache) == 5
        kept = [f for f in files if cache.get(f, "m", "p") is not None]
    assert kept == [files[0], *files[4:]]


def test_concurrent_writers_and_a_killed_one(tmp_path: Path):
    db = tmp_path / "c.sqlite"
    files = []
    for i in range(60):
        files.append(tmp_path / f"{i}.flac")
        files[-1].write_bytes(b"y" * (i + 1))

    def writer(part: list[Path]) -> None:
        with AnalysisCache(db) as cache:
            for i, f in enumerate(part):
                cache.put(fake(f, i), "m", "p", os.stat(f))

    threads = [threading.Thread(target=writer, args=(files[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A process that stores one analysis and dies without closing anything.
    code = (
        "import os, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from genrefy_tagger.running.cache import AnalysisCache\n"
        "from genrefy_tagger.listening.engine import Analysis\n"
        f"p = Path({str(tmp_path / 'killed.mp3')!r}); p.write_bytes(b'z')\n"
        f"c = AnalysisCache({str(db)!r})\n"
        "c.put(Analysis(p, note='silent', duration=9.0), 'm', 'p', os.stat(p))\n"
        "os._exit(9)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 9
    with AnalysisCache(db) as cache:
        assert len(cache) == 61
        assert all(cache.get(f, "m", "p") is not None for f in files)
        assert cache.get(tmp_path / "killed.mp3", "m", "p").note == "silent"


def test_a_corrupt_cache_is_replaced(tmp_path: Path):
    db = tmp_path / "c.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    f = tmp_path / "a.mp3"
    f.write_bytes(b"a")
    with AnalysisCache(db) as cache:
        assert len(cache) == 0
        cache.put(fake(f, 1), "m", "p", os.stat(f))
        assert cache.get(f, "m", "p") is not None


def test_a_busy_cache_is_waited_for_not_replaced(tmp_path: Path, monkeypatch):
    db = tmp_path / "c.sqlite"
    f = tmp_path / "a.mp3"
    f.write_bytes(b"a")
    with AnalysisCache(db) as cache:
        cache.put(fake(f, 1), "m", "p", os.stat(f))
    # Another process setting the database up can make the first statements fail with
    # SQLITE_BUSY even with a busy timeout; that is no reason to start a new cache.
    connect, busy = AnalysisCache._connect, [2]

    def sometimes_busy(self):
        if busy[0]:
            busy[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return connect(self)

    monkeypatch.setattr(AnalysisCache, "_connect", sometimes_busy)
    with AnalysisCache(db) as cache:
        assert busy == [0] and cache.get(f, "m", "p") is not None
