"""Analysis on a Ray cluster, behind the interface of
:class:`~genrefy_tagger.listening.engine.AnalysisPool`.

A pool of actors, each holding one loaded :class:`~genrefy_tagger.listening.engine.Analyzer` and
analysing one file at a time. This process (the driver) only hands out paths — or, with
``ship_audio``, the files' bytes, for workers that cannot see the files — and gets
:class:`~genrefy_tagger.listening.engine.Analysis` objects back. Reading tags, deciding, writing and
journalling stay with the driver (:mod:`~genrefy_tagger.running.tagger`), so a file's safety never
depends on the cluster. The caller bounds how many files are in flight, as with the local pool.

Faults: actors restart without limit (on any node with a free CPU) and Ray re-runs the
tasks a dead actor held, up to ``TASK_RETRIES`` times. A task that still ends on an actor
error is analysed again once on another actor, explicitly; a file that kills its worker
every time becomes that file's failed row, as with the local pool's crash handling.

Only :mod:`genrefy_tagger.running.tagger` imports this module, and only for ``--ray``: Ray is an
optional extra (``pip install 'genrefy[ray]'``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import traceback
import uuid
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import ray
from ray.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

from ..isolation import describe
from ..listening.engine import Analysis, Analyzer
from ..listening.model import BundleError, load_bundle
from ..reading.windows import WindowPolicy

#: How often Ray itself re-runs a task whose actor died (the actor restarts first).
TASK_RETRIES = 2
#: How long the actors may take to start and load the model before the run gives up.
STARTUP_TIMEOUT_S = 600.0
#: Errors that say the worker, not the file, went away: the file is analysed again.
_WORKER_LOST = (RayActorError, WorkerCrashedError)


class _Analyser:
    """The actor: one model, loaded once, one file at a time."""

    def __init__(
        self, model: str | None, policy: WindowPolicy | None, min_confidence: float | None
    ) -> None:
        # One thread per actor: each actor already holds a CPU of its own.
        from threadpoolctl import threadpool_limits

        self._threads = threadpool_limits(limits=1)
        self.analyzer = Analyzer(model, policy=policy, min_confidence=min_confidence)

    def model(self) -> str:
        """The model this worker loaded, to compare with the driver's."""
        from .cache import model_key

        return model_key(self.analyzer.bundle)

    def analyse(self, path: str, data: bytes | None = None) -> Analysis:
        if data is None:
            return self.analyzer.analyse(path)
        # Decoders pick their demuxer from the name too: keep the suffix.
        with tempfile.TemporaryDirectory(prefix="genrefy-") as tmp:
            local = Path(tmp) / f"track{Path(path).suffix}"
            local.write_bytes(data)
            analysis = self.analyzer.analyse(local)
        rename = str(local), path  # messages name the driver's file, not the copy

        def renamed(text: str | None) -> str | None:
            return None if text is None else text.replace(*rename)

        return replace(analysis, error=renamed(analysis.error), note=renamed(analysis.note))


def connect(address: str, cpus: int | None = None) -> bool:
    """Join (``auto``, ``host:port``, ``ray://…``) or start (``local``) a cluster.

    Returns True when this call started Ray (then :func:`ray.shutdown` is ours to call).
    A Ray already initialised in this process is used as it is.
    """
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return True


class RayPool:
    """Analyses files on ``jobs`` Ray actors; ``submit`` / ``result`` as AnalysisPool.

    ``jobs`` defaults to the cluster's CPUs. :meth:`result` never raises.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        address: str = "auto",
        policy: WindowPolicy | None = None,
        min_confidence: float | None = None,
        jobs: int | None = None,
        ship_audio: bool = False,
    ) -> None:
        self.bundle = load_bundle(model)
        self.ship_audio = ship_audio
        self._started = connect(address, jobs)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.jobs = max(1, jobs or cpus)
        # Workers load the model themselves: by name for a shipped one (their own copy),
        # by path for a folder (which they must see, e.g. on shared storage).
        self._model = str(self.bundle.path) if model and Path(model).exists() else model
        self._args = (None if self._model is None else str(self._model), policy, min_confidence)
        self._name = f"genrefy-analyser-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._load = [0] * self.jobs
        self.actors: list[ray.actor.ActorHandle] = []
        try:
            self.actors = [self._new_actor(i) for i in range(self.jobs)]
            self._check_models()
        except BaseException:
            self.close()
            raise

    def _new_actor(self, i: int, generation: int = 0) -> ray.actor.ActorHandle:
        actor = ray.remote(_Analyser).options(
            name=f"{self._name}-{i}-{generation}",
            num_cpus=1,
            max_restarts=-1,
            max_task_retries=TASK_RETRIES,
        )
        return actor.remote(*self._args)

    def _check_models(self) -> None:
        from .cache import model_key

        try:
            keys = ray.get([a.model.remote() for a in self.actors], timeout=STARTUP_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as exc:
            raise BundleError(
                f"{self.jobs} analysis workers did not start in {STARTUP_TIMEOUT_S:.0f} s "
                f"(the cluster has {ray.cluster_resources().get('CPU', 0):.0f} CPUs)"
            ) from exc
        except ray.exceptions.RayError as exc:
            raise BundleError(f"the workers cannot load the model: {describe(exc)}") from exc
        ours = model_key(self.bundle)
        others = sorted(set(keys) - {ours})
        if others:
            raise BundleError(
                f"the workers load another model ({', '.join(others)}) than this machine "
                f"({ours}): install the same genrefy on every node"
            )

    def submit(self, path: str | os.PathLike) -> Future[Analysis]:
        out: Future[Analysis] = Future()
        i = self._pick()
        try:
            ref = self._send(path, i)
        except OSError as exc:  # --ship-audio: the driver cannot read the file
            with self._lock:
                self._load[i] -= 1
            out.set_result(Analysis(Path(path), error=f"cannot read: {describe(exc, path)}"))
            return out

        def arrived(done: Future) -> None:
            with self._lock:
                self._load[i] -= 1
            exc = done.exception()
            if exc is None:
                out.set_result(replace(done.result(), path=Path(path)))
            else:  # result() decides what to do about it, on the driver's thread
                out.set_exception(exc)

        ref.future().add_done_callback(arrived)
        return out

    def _pick(self) -> int:
        """The least busy actor (it is counted busy one more from now)."""
        with self._lock:
            i = min(range(self.jobs), key=self._load.__getitem__)
            self._load[i] += 1
        return i

    def _send(self, path: str | os.PathLike, i: int) -> ray.ObjectRef:
        data = Path(path).read_bytes() if self.ship_audio else None
        return self.actors[i].analyse.remote(os.path.abspath(path), data)

    def result(self, future: Future[Analysis], path: str | os.PathLike) -> Analysis:
        """The analysis of ``path`` that ``future`` (from :meth:`submit`) stands for."""
        try:
            return future.result()
        except _WORKER_LOST as exc:
            return self._elsewhere(path, exc)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
            return _unexpected(path, exc)

    def _elsewhere(self, path: str | os.PathLike, first: BaseException) -> Analysis:
        """Analyse ``path`` once more, on another actor, after its worker was lost."""
        if isinstance(first, ActorDiedError):
            self._replace_dead()
        i = self._pick()
        try:
            analysis = ray.get(self._send(path, i))
        except _WORKER_LOST:
            return Analysis(
                Path(path),
                error="the analysis worker died on this file, on two workers "
                "(a decoder crash, or out of memory)",
            )
        except OSError as exc:
            return Analysis(Path(path), error=f"cannot read: {describe(exc, path)}")
        except Exception as exc:  # noqa: BLE001
            return _unexpected(path, exc)
        finally:
            with self._lock:
                self._load[i] -= 1
        return replace(analysis, path=Path(path))

    def _replace_dead(self) -> None:
        """Start a fresh actor for each one that will not come back (killed for good)."""
        for i, actor in enumerate(self.actors):
            try:
                ray.get(actor.model.remote(), timeout=STARTUP_TIMEOUT_S)
            except ActorDiedError:
                self.actors[i] = self._new_actor(i, generation=uuid.uuid4().int % 10**6)

    def close(self) -> None:
        for actor in self.actors:
            # Already gone, or Ray shutting down: nothing left to stop.
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self.actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unexpected(path: str | os.PathLike, exc: BaseException) -> Analysis:
    reason = f"unexpected {type(exc).__name__} on the cluster: {describe(exc, path)}"
    return Analysis(Path(path), error=reason, trace=traceback.format_exc())
