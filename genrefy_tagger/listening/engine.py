"""One file in, one decision out — and the same for many files in parallel.

This is what the CLI and the beets plugin share: the windows the model asks for
(:mod:`~genrefy_tagger.reading.windows`) → its probabilities
(:mod:`~genrefy_tagger.listening.kinds`,
whatever its kind) → the vote (:mod:`~genrefy_tagger.listening.vote`). Nothing here writes to a
file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..isolation import describe, ignore_interrupts, one_line
from ..reading.audio import AudioError
from ..reading.windows import WindowPolicy, read_windows
from .kinds import load_model
from .model import Bundle, load_bundle
from .outside import OutsideRule, judge
from .vote import Decision, decide


@dataclass(frozen=True)
class Analysis:
    """What we heard in one file.

    Exactly one holds: ``decision`` is set; or ``error`` says why the file could
    not be analysed (a failure); or ``note`` says why there is nothing to judge
    (too short, silent: unsure, not a failure). ``trace`` is the traceback of an
    unexpected error, for the run's error log.
    """

    path: Path
    decision: Decision | None = None
    error: str | None = None
    note: str | None = None
    duration: float = 0.0
    n_silent: int = 0
    seconds: float = 0.0
    trace: str | None = None
    # The window probabilities the decision was voted from (kept by the analysis cache).
    probabilities: np.ndarray | None = None
    # The front-end's mean MSD tag scores, where the model has them (the outside rule).
    tags: np.ndarray | None = None

    @property
    def unsure(self) -> bool:
        return self.error is None and (self.decision is None or self.decision.unsure)


class Analyzer:
    """Holds one loaded model; analyses files one at a time, never raising for bad files."""

    def __init__(
        self,
        bundle: Bundle | str | os.PathLike | None = None,
        *,
        policy: WindowPolicy | None = None,
        min_confidence: float | None = None,
        backend: str = "auto",
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.policy = policy or WindowPolicy(max_windows=self.bundle.max_windows)
        self.min_confidence = (
            self.bundle.min_confidence if min_confidence is None else float(min_confidence)
        )
        self.model = load_model(self.bundle, backend=backend)
        # --min-confidence 0 asks for every pick: no abstaining on music outside the genres.
        self.outside = OutsideRule.for_threshold(self.bundle.meta, self.min_confidence)

    @property
    def window_seconds(self) -> float:
        return self.model.window.window_seconds

    def analyse(self, path: str | os.PathLike) -> Analysis:
        path = Path(path)
        start = time.perf_counter()
        try:
            return self._analyse(path, start)
        except AudioError as exc:
            return Analysis(path, error=one_line(str(exc), path), seconds=_since(start))
        except MemoryError:
            return Analysis(path, error="out of memory while decoding", seconds=_since(start))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a library run
            reason = f"unexpected {type(exc).__name__} while analysing: {describe(exc, path)}"
            return Analysis(path, error=reason, seconds=_since(start), trace=traceback.format_exc())

    def _analyse(self, path: Path, start: float) -> Analysis:
        probs, tags, duration, n_silent = self._probabilities(path)
        elapsed = time.perf_counter() - start
        if len(probs) == 0:
            if n_silent:
                note = f"silent (no 3-s window above {self.policy.silence_db:.0f} dBFS)"
            else:
                note = f"too short ({duration:.1f} s; need {self.window_seconds:g} s)"
            return Analysis(path, note=note, duration=duration, seconds=elapsed)
        decision = decide(
            probs,
            self.bundle.genres,
            rule=self.bundle.vote,
            min_confidence=self.min_confidence,
            temperature=self.bundle.temperature,
        )
        decision = judge(self.outside, decision, tags, self.bundle.genres)
        return Analysis(
            path,
            decision=decision,
            duration=duration,
            n_silent=n_silent,
            seconds=time.perf_counter() - start,
            probabilities=np.asarray(probs),
            tags=tags,
        )

    def _probabilities(self, path: Path) -> tuple[np.ndarray, np.ndarray | None, float, int]:
        """(n, n_genres) probabilities to vote over, the mean MSD tag scores (None: the
        model has none), the track's duration, silent windows."""
        windows = read_windows(path, config=self.model.window, policy=self.policy)
        if len(windows.samples) == 0:
            empty = np.zeros((0, len(self.bundle.genres)))
            return empty, None, windows.duration, windows.n_silent
        with_tags = getattr(self.model, "probabilities_and_tags", None)
        if with_tags is not None:
            probs, tags = with_tags(windows.samples)
        else:
            probs, tags = self.model.probabilities(windows.samples), None
        return probs, tags, windows.duration, windows.n_silent


def _since(start: float) -> float:
    return time.perf_counter() - start


# Each worker process keeps its own Analyzer, built once by the pool initializer.
_worker: dict[str, object] = {}


def _init_worker(
    bundle_path: str, policy: WindowPolicy | None, min_confidence: float | None
) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone handles it
    # (cancels what is queued, lets running files finish), so workers print no traceback.
    ignore_interrupts()
    # One thread per worker: ``jobs`` workers already fill the cores, and BLAS or
    # OpenMP pools inside each would only fight over them.
    from threadpoolctl import threadpool_limits

    _worker["threads"] = threadpool_limits(limits=1)
    try:
        _worker["analyzer"] = Analyzer(bundle_path, policy=policy, min_confidence=min_confidence)
    except Exception as exc:  # noqa: BLE001 - an initializer that raises breaks the pool, and
        # every file would then look like a crash; say what is wrong instead.
        _worker["broken"] = f"cannot load the model: {describe(exc)}"
        _worker["trace"] = traceback.format_exc()


def _analyse_in_worker(path: str) -> Analysis:
    analyzer = _worker.get("analyzer")
    if not isinstance(analyzer, Analyzer):
        reason, trace = str(_worker.get("broken")), str(_worker.get("trace"))
        return Analysis(Path(path), error=reason, trace=trace)
    return analyzer.analyse(path)


class AnalysisPool:
    """Analyses files on ``jobs`` worker processes (in this process when ``jobs == 1``).

    Use as a context manager; :meth:`submit` returns a future, :meth:`result` turns it
    into an :class:`Analysis` and never raises. The caller bounds how many futures it
    keeps in flight, which keeps memory flat.

    A worker that dies (a decoder crash, the OOM killer) breaks the whole process
    pool and every future in flight with it. The pool is then restarted, and each of
    those files is analysed again on a worker of its own, so the crash is pinned on
    the file that caused it and the others are analysed as usual.
    """

    def __init__(
        self,
        bundle_path: str | os.PathLike | None = None,
        *,
        policy: WindowPolicy | None = None,
        min_confidence: float | None = None,
        jobs: int | None = None,
    ) -> None:
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.bundle = load_bundle(bundle_path)
        self._local: Analyzer | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._alone: ProcessPoolExecutor | None = None  # re-runs files of a crashed pool
        self._initargs = (str(self.bundle.path), policy, min_confidence)
        if self.jobs == 1:
            self._local = Analyzer(self.bundle, policy=policy, min_confidence=min_confidence)
        else:
            self._pool = self._new_pool(self.jobs)

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        # forkserver: workers never inherit a parent's threads (TensorFlow's, tqdm's),
        # which plain fork can deadlock on.
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_init_worker,
            initargs=self._initargs,
        )

    def submit(self, path: str | os.PathLike) -> Future[Analysis]:
        if self._pool is not None:
            try:
                return self._pool.submit(_analyse_in_worker, str(path))
            except BrokenProcessPool:  # a worker died since the last submit
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool(self.jobs)
                return self._pool.submit(_analyse_in_worker, str(path))
        done: Future[Analysis] = Future()
        done.set_result(self._local.analyse(path))  # type: ignore[union-attr]
        return done

    def result(self, future: Future[Analysis], path: str | os.PathLike) -> Analysis:
        """The analysis of ``path`` that ``future`` (from :meth:`submit`) stands for."""
        try:
            return future.result()
        except BrokenProcessPool:
            return self._analyse_alone(path)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
            reason = f"unexpected {type(exc).__name__} while analysing: {describe(exc, path)}"
            return Analysis(Path(path), error=reason, trace=traceback.format_exc())

    def _analyse_alone(self, path: str | os.PathLike) -> Analysis:
        """Analyse ``path`` on a worker of its own: if that one dies too, the file is why."""
        if self._alone is None:
            self._alone = self._new_pool(1)
        try:
            return self._alone.submit(_analyse_in_worker, str(path)).result()
        except BrokenProcessPool:
            self._alone.shutdown(wait=False, cancel_futures=True)
            self._alone = None
            return Analysis(
                Path(path),
                error="the analysis process died on this file (a decoder crash, or out of memory)",
            )

    def close(self) -> None:
        for pool in (self._pool, self._alone):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._alone = None

    def __enter__(self) -> AnalysisPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def analyse_paths(
    paths: Iterable[str | os.PathLike],
    *,
    bundle_path: str | os.PathLike | None = None,
    policy: WindowPolicy | None = None,
    min_confidence: float | None = None,
    jobs: int | None = None,
) -> Iterator[Analysis]:
    """Analyse files in input order, ``jobs`` at a time, streaming.

    At most ``2 * jobs`` files are in flight, so memory stays flat however
    long ``paths`` is. With ``jobs > 1`` the workers start with ``forkserver``,
    which imports the calling script again: call this from under
    ``if __name__ == "__main__":`` (otherwise every file comes back as "the
    analysis process died").
    """
    with AnalysisPool(bundle_path, policy=policy, min_confidence=min_confidence, jobs=jobs) as pool:
        pending: deque[tuple[Future[Analysis], str | os.PathLike]] = deque()
        for p in paths:
            pending.append((pool.submit(p), p))
            if len(pending) >= 2 * pool.jobs:
                yield pool.result(*pending.popleft())
        while pending:
            yield pool.result(*pending.popleft())
