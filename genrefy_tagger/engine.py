"""One file in, one decision out — and the same for many files in parallel.

This is what the CLI and the beets plugin share: decode windows → features →
model → vote. Nothing here writes to a file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError
from .features import window_features
from .model import Bundle, Predictor, load_bundle
from .vote import Decision, decide
from .windows import WindowPolicy, read_windows


@dataclass(frozen=True)
class Analysis:
    """What we heard in one file.

    Exactly one holds: ``decision`` is set; or ``error`` says why the file could
    not be analysed (a failure); or ``note`` says why there is nothing to judge
    (too short, silent: unsure, not a failure).
    """

    path: Path
    decision: Decision | None = None
    error: str | None = None
    note: str | None = None
    duration: float = 0.0
    n_silent: int = 0
    seconds: float = 0.0

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
        if self.bundle.kind == "musicnn":
            from .musicnn import MusicnnPredictor

            self._musicnn = MusicnnPredictor(self.bundle.path)
        else:
            self.predictor = Predictor(self.bundle, backend=backend)

    @property
    def window_seconds(self) -> float:
        if self.bundle.kind == "musicnn":
            return self._musicnn.config.window_seconds
        return self.bundle.feature_config.window_seconds

    def analyse(self, path: str | os.PathLike) -> Analysis:
        path = Path(path)
        start = time.perf_counter()
        try:
            return self._analyse(path, start)
        except AudioError as exc:
            return Analysis(path, error=str(exc), seconds=time.perf_counter() - start)
        except MemoryError:
            return Analysis(path, error="out of memory while decoding")
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a library run
            reason = f"unexpected {type(exc).__name__}: {exc}".splitlines()[0][:200]
            return Analysis(path, error=reason, seconds=time.perf_counter() - start)

    def _analyse(self, path: Path, start: float) -> Analysis:
        probs, duration, n_silent = self._probabilities(path)
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
        return Analysis(
            path,
            decision=decision,
            duration=duration,
            n_silent=n_silent,
            seconds=time.perf_counter() - start,
        )

    def _probabilities(self, path: Path) -> tuple[np.ndarray, float, int]:
        """(n, n_genres) probabilities to vote over, the track's duration, silent windows."""
        if self.bundle.kind == "musicnn":
            return self._musicnn.window_probabilities(path, policy=self.policy)
        config = self.bundle.feature_config
        windows = read_windows(path, config=config, policy=self.policy)
        if len(windows.samples) == 0:
            return np.zeros((0, len(self.bundle.genres))), windows.duration, windows.n_silent
        probs = self.predictor.predict(window_features(windows.samples, config=config))
        return probs, windows.duration, windows.n_silent


# Each worker process keeps its own Analyzer, built once by the pool initializer.
_worker: dict[str, object] = {}


def _init_worker(
    bundle_path: str, policy: WindowPolicy | None, min_confidence: float | None
) -> None:
    # One thread per worker: ``jobs`` workers already fill the cores, and BLAS or
    # OpenMP pools inside each would only fight over them.
    from threadpoolctl import threadpool_limits

    _worker["threads"] = threadpool_limits(limits=1)
    _worker["analyzer"] = Analyzer(bundle_path, policy=policy, min_confidence=min_confidence)


def _analyse_in_worker(path: str) -> Analysis:
    analyzer = _worker["analyzer"]
    assert isinstance(analyzer, Analyzer)
    return analyzer.analyse(path)


class AnalysisPool:
    """Analyses files on ``jobs`` worker processes (in this process when ``jobs == 1``).

    Use as a context manager; :meth:`submit` returns a future. The caller bounds
    how many futures it keeps in flight, which keeps memory flat.
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
        if self.jobs == 1:
            self._local = Analyzer(self.bundle, policy=policy, min_confidence=min_confidence)
        else:
            # forkserver: workers never inherit a parent's threads (TensorFlow's, tqdm's),
            # which plain fork can deadlock on.
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_init_worker,
                initargs=(str(self.bundle.path), policy, min_confidence),
            )

    def submit(self, path: str | os.PathLike) -> Future[Analysis]:
        if self._pool is not None:
            return self._pool.submit(_analyse_in_worker, str(path))
        done: Future[Analysis] = Future()
        done.set_result(self._local.analyse(path))  # type: ignore[union-attr]
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

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
    long ``paths`` is.
    """
    with AnalysisPool(bundle_path, policy=policy, min_confidence=min_confidence, jobs=jobs) as pool:
        pending: deque[Future[Analysis]] = deque()
        for p in paths:
            pending.append(pool.submit(p))
            if len(pending) >= 2 * pool.jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
