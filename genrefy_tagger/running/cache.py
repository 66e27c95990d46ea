"""The analysis cache: what a model heard in a file, kept in SQLite so re-runs need not listen.

One row per (file path, model id, window policy) holds the file's size and mtime
when it was analysed, the window probabilities and the track's duration (or the
note saying why there was nothing to judge). A lookup matches only when the file's
size and mtime are unchanged; the decision is then voted again from the stored
probabilities, so a new ``--min-confidence`` or ``--top-k`` costs no listening.
Failures are not kept: the next run tries again. The path is keyed by its bytes
(:func:`genrefy_tagger.fsnames.sqlite_key`), so a name that is not UTF-8 is cached too.

The database (``<state dir>/cache.sqlite``) runs in WAL mode: every analysis is
committed as it arrives, so an interrupted run keeps what it heard, and several
runs (``genrefy-tag`` and ``beet genrefy``) can share it at once (a busy or locked
database is waited for). It is bounded: beyond ``max_rows`` the least recently used
rows go. A file that is not a database any more is replaced by an empty cache (it
only ever holds copies).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..fsnames import sqlite_key
from ..listening.engine import Analysis, AnalysisPool
from ..listening.model import Bundle, load_bundle
from ..listening.outside import OutsideRule, judge
from ..listening.vote import decide
from ..reading.windows import WindowPolicy
from ..state import state_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: the mean MSD tag scores (tags) for the outside rule
#: Measured 0.58 KB a row with the default model (one group of probabilities), ~1.3 KB with
#: the hybrid (10 windows): 200,000 analysed files take about 120-260 MB.
DEFAULT_MAX_ROWS = 200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    policy TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    n_genres INTEGER NOT NULL,
    probs BLOB NOT NULL,
    duration REAL NOT NULL,
    n_silent INTEGER NOT NULL,
    note TEXT,
    used REAL NOT NULL, tags BLOB,  -- tags: the mean MSD tag scores (schema 2)
    PRIMARY KEY (path, model, policy)
);
CREATE INDEX IF NOT EXISTS analyses_used ON analyses (used);
"""


def default_cache_path() -> Path:
    return state_dir() / "cache.sqlite"


def file_stat(path: str | os.PathLike) -> os.stat_result | None:
    """``os.stat(path)``, or None when it fails (whoever reads the file reports why)."""
    try:
        return os.stat(path)
    except OSError:
        return None


def model_key(bundle: Bundle) -> str:
    """The model's name and version plus a digest of its ``bundle.json``.

    The digest tells apart two bundles that share a name and version but were
    trained differently (their scaler statistics and metrics differ).
    """
    digest = hashlib.sha256((bundle.path / "bundle.json").read_bytes()).hexdigest()[:16]
    return f"{bundle.tag}#{digest}"


def policy_key(policy: WindowPolicy) -> str:
    return json.dumps(asdict(policy), sort_keys=True)


class AnalysisCache:
    """The SQLite store. Safe to share between threads of one process (one lock)."""

    def __init__(self, path: str | os.PathLike, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._touched: list[tuple[float, int]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect_when_free()
        except sqlite3.DatabaseError as exc:
            if _kind(exc) != "corrupt":  # never delete a cache someone else is using
                raise
            log.warning("analysis cache %s unreadable (%s); starting a new one", self.path, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._db = self._connect()

    def _connect_when_free(self, attempts: int = 50) -> sqlite3.Connection:
        """Connect; a cache another process is setting up (busy, locked) is waited for."""
        for _ in range(attempts - 1):
            try:
                return self._connect()
            except sqlite3.OperationalError as exc:
                if _kind(exc) != "busy":
                    raise
                time.sleep(0.1)
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                db.execute("DROP TABLE IF EXISTS analyses")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, path: str | os.PathLike, model: str, policy: str) -> Analysis | None:
        """The stored analysis of this file as it is now (no decision yet), or None."""
        st = file_stat(path)
        if st is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT rowid, size, mtime_ns, n_genres, probs, duration, n_silent, note, tags "
                "FROM analyses WHERE path = ? AND model = ? AND policy = ?",
                (sqlite_key(path), model, policy),
            ).fetchone()
            if row is None or (row[1], row[2]) != (st.st_size, st.st_mtime_ns):
                return None
            self._touched.append((time.time(), row[0]))
        probs = np.frombuffer(row[4], dtype="<f8").reshape(-1, row[3])
        tags = None if row[8] is None else np.frombuffer(row[8], dtype="<f4")
        return Analysis(Path(path), note=row[7], duration=row[5], n_silent=row[6],
                        probabilities=probs, tags=tags)  # fmt: skip

    def put(self, analysis: Analysis, model: str, policy: str, st: os.stat_result) -> None:
        """Keep an analysis made of the file as ``st`` describes it (stat taken before)."""
        if analysis.error is not None:
            return
        probs = analysis.probabilities
        if probs is None:
            if analysis.decision is not None:
                return  # a decision without its probabilities cannot be re-voted
            probs = np.zeros((0, 0))
        probs = np.asarray(probs, dtype="<f8")
        n_genres = probs.shape[1] if probs.ndim == 2 and probs.shape[1] else 1
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sqlite_key(analysis.path),
                    model,
                    policy,
                    st.st_size,
                    st.st_mtime_ns,
                    n_genres,
                    probs.tobytes(),
                    float(analysis.duration),
                    int(analysis.n_silent),
                    analysis.note,
                    time.time(),
                    None if analysis.tags is None else np.asarray(analysis.tags, "<f4").tobytes(),
                ),
            )

    def renew(self, path: str | os.PathLike, before: os.stat_result) -> None:
        """Re-key a file's rows after genrefy changed only its tags (audio verified identical)."""
        st = file_stat(path)
        if st is None:
            return
        with self._lock:
            self._db.execute(
                "UPDATE analyses SET size = ?, mtime_ns = ? "
                "WHERE path = ? AND size = ? AND mtime_ns = ?",
                (st.st_size, st.st_mtime_ns, sqlite_key(path))
                + (before.st_size, before.st_mtime_ns),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM analyses").fetchone()[0]

    def clear(self) -> int:
        """Forget everything; returns how many analyses were removed."""
        with self._lock:
            removed = self._db.execute("DELETE FROM analyses").rowcount
            self._db.execute("VACUUM")
        return removed

    def prune(self) -> int:
        """Drop the least recently used rows beyond ``max_rows``; returns how many went."""
        self._flush_touched()
        with self._lock:
            excess = self._db.execute("SELECT COUNT(*) FROM analyses").fetchone()[0]
            excess -= self.max_rows
            if excess <= 0:
                return 0
            return self._db.execute(
                "DELETE FROM analyses WHERE rowid IN "
                "(SELECT rowid FROM analyses ORDER BY used LIMIT ?)",
                (excess,),
            ).rowcount

    def _flush_touched(self) -> None:
        with self._lock:
            if self._touched:
                self._db.execute("BEGIN")
                self._db.executemany("UPDATE analyses SET used = ? WHERE rowid = ?", self._touched)
                self._db.execute("COMMIT")
                self._touched.clear()

    def close(self) -> None:
        try:
            self.prune()
        except sqlite3.Error as exc:  # a busy or read-only cache must not fail a run
            log.warning("analysis cache %s: %s", self.path, exc)
        self._db.close()

    def __enter__(self) -> AnalysisCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kind(exc: sqlite3.Error) -> str:
    """``busy`` (another connection holds a lock), ``corrupt`` (not a database) or ``other``."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is None:  # before: the message and the class tell
        if "locked" in str(exc) or "busy" in str(exc):
            return "busy"
        return "other" if isinstance(exc, sqlite3.OperationalError) else "corrupt"
    # SQLite's primary codes: BUSY 5, LOCKED 6, CORRUPT 11, NOTADB 26.
    return {5: "busy", 6: "busy", 11: "corrupt", 26: "corrupt"}.get(code & 0xFF, "other")


def open_cache(path: str | os.PathLike | None) -> AnalysisCache | None:
    """The cache at ``path`` (None: the default place), or None with a warning if unusable."""
    try:
        return AnalysisCache(path or default_cache_path())
    except (OSError, sqlite3.Error) as exc:
        log.warning("analysis cache unavailable (%s); analysing without it", exc)
        return None


class CachedPool:
    """An :class:`AnalysisPool` that asks the cache first.

    The model and the worker processes start only on the first file the cache
    cannot answer, so an unchanged library re-runs without loading the model.
    ``refresh`` (``--force``) skips lookups but still stores the fresh analyses.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        cache: AnalysisCache | None,
        policy: WindowPolicy | None = None,
        min_confidence: float | None = None,
        jobs: int | None = None,
        refresh: bool = False,
        pool_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.bundle = load_bundle(model)
        # Builds the analysis pool on the first miss (default: a local AnalysisPool).
        self._pool_factory = pool_factory
        self.policy = policy or WindowPolicy(max_windows=self.bundle.max_windows)
        self.min_confidence = (
            self.bundle.min_confidence if min_confidence is None else float(min_confidence)
        )
        self._outside = OutsideRule.for_threshold(self.bundle.meta, self.min_confidence)
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.cache, self.refresh = cache, refresh
        self.hits = self.misses = 0
        self._model_key = model_key(self.bundle) if cache is not None else ""
        self._policy_key = policy_key(self.policy)
        self._pool: AnalysisPool | None = None
        if pool_factory is not None:  # e.g. a cluster: joined (or refused) before any file
            self._analysis_pool()

    def submit(self, path: str | os.PathLike) -> Future[Analysis]:
        if self.cache is None:
            return self._analysis_pool().submit(path)
        if not self.refresh:
            stored = self.cache.get(path, self._model_key, self._policy_key)
            if stored is not None:
                self.hits += 1
                done: Future[Analysis] = Future()
                done.set_result(self._decided(stored))
                return done
        self.misses += 1
        st = file_stat(path)
        if st is None:
            return self._analysis_pool().submit(path)  # the analysis reports the problem
        future = self._analysis_pool().submit(path)
        future.add_done_callback(lambda f: self._store(f, st))
        return future

    def result(self, future: Future[Analysis], path: str | os.PathLike) -> Analysis:
        """The analysis ``future`` (from :meth:`submit`) stands for.

        Where the analysis pool can recover a file from a dead worker (its own ``result``),
        that is used; a cache hit is simply its result.
        """
        recover = getattr(self._pool, "result", None)
        if recover is None:
            return future.result()
        analysis = recover(future, path)
        if self.cache is not None and not future.cancelled() and future.exception() is not None:
            # Heard again elsewhere after its worker died: the done-callback had nothing to keep.
            st = file_stat(path)
            if st is not None:
                self._put(analysis, st)
        return analysis

    def renew(self, path: str | os.PathLike, before: os.stat_result) -> None:
        if self.cache is not None:
            self.cache.renew(path, before)

    def _decided(self, stored: Analysis) -> Analysis:
        probs = stored.probabilities
        if probs is None or len(probs) == 0:
            return stored
        decision = decide(
            probs,
            self.bundle.genres,
            rule=self.bundle.vote,
            min_confidence=self.min_confidence,
            temperature=self.bundle.temperature,  # as Analyzer does: a hit decides like a miss
        )
        decision = judge(self._outside, decision, stored.tags, self.bundle.genres)  # as Analyzer
        return Analysis(
            stored.path,
            decision=decision,
            duration=stored.duration,
            n_silent=stored.n_silent,
            probabilities=probs,
        )

    def _store(self, future: Future[Analysis], st: os.stat_result) -> None:
        if future.cancelled() or future.exception() is not None or self.cache is None:
            return
        self._put(future.result(), st)

    def _put(self, analysis: Analysis, st: os.stat_result) -> None:
        assert self.cache is not None
        try:
            self.cache.put(analysis, self._model_key, self._policy_key, st)
        except sqlite3.Error as exc:
            log.warning("analysis cache: could not store %s: %s", analysis.path, exc)

    def _analysis_pool(self) -> AnalysisPool:
        if self._pool is None and self._pool_factory is not None:
            self._pool = self._pool_factory()
            self.jobs = self._pool.jobs  # e.g. a cluster's CPUs: the caller's in-flight bound
        if self._pool is None:
            self._pool = AnalysisPool(
                self.bundle.path,
                policy=self.policy,
                min_confidence=self.min_confidence,
                jobs=self.jobs,
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> CachedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
