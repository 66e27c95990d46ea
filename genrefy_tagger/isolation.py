"""Keeping one file's trouble to that file.

A library run meets files no test anticipated. Whatever goes wrong with one file —
in any phase, with any exception type — becomes that file's one-line reason; the
full traceback of anything unexpected goes to an error log, which is created only
when there is something to put in it, and named once in the summary. Ctrl-C is
held back while one file is being written, so that file ends up finished or
untouched, never in between.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .fsnames import shown

log = logging.getLogger(__name__)

_MAX_REASON = 200


def one_line(text: str, path: str | os.PathLike | None = None) -> str:
    """``text`` cut to its first line, without ``path`` (the user already sees which file)."""
    text = (text.strip().splitlines() or [""])[0]
    if path is not None:
        for shown in {os.fspath(path), os.path.abspath(path), os.path.realpath(path)}:
            text = text.replace(f"'{shown}'", "the file").replace(shown, "the file")
    return text[:_MAX_REASON].rstrip(" :")


def describe(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """A short phrase for an exception: its message, or its type when it has none."""
    message = getattr(exc, "strerror", None) if isinstance(exc, OSError) else None
    return one_line(message or str(exc), path) or type(exc).__name__


class ErrorLog:
    """Full tracebacks of the unexpected errors of one run, one block per file.

    ``path`` None: tracebacks go to this module's logger instead of a file.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.problem: str | None = None  # why the log itself could not be written

    def unexpected(
        self,
        path: str | os.PathLike,
        phase: str,
        exc: BaseException | None = None,
        *,
        reason: str | None = None,
        trace: str | None = None,
    ) -> str:
        """Record an unexpected error of ``phase`` on ``path``; return the one-line reason.

        Pass the exception, or (from a worker process) its ``reason`` and ``trace`` text.
        """
        if exc is not None:
            reason = f"unexpected {type(exc).__name__} while {phase}: {describe(exc, path)}"
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        reason = one_line(reason or f"unexpected error while {phase}", path)
        self.count += 1
        # Only read by people: a name that is not UTF-8 (in the path or the trace) must not
        # make the log itself fail.
        block = shown(f"--- {os.fspath(path)}  ({phase}, {_now()})\n{trace or reason}\n")
        if self.path is None or self.problem is not None:
            log.debug("%s", block)
            return reason
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(block)
        except OSError as exc_:
            self.problem = f"cannot write {self.path}: {exc_.strerror or exc_}"
            log.debug("%s", block)
        return reason

    def summary(self) -> str | None:
        """One line naming the log, or None when nothing unexpected happened."""
        if not self.count or self.path is None:
            return None
        files = "1 file" if self.count == 1 else f"{self.count} files"
        if self.problem:
            return f"unexpected errors on {files}; their details were lost ({self.problem})"
        return f"details of unexpected errors ({files}): {self.path}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block is done, then deliver it.

    Used around the write of one file: an interrupt lands before or after it,
    so the file is either finished (and journalled) or untouched. Outside the
    main thread signals cannot be handled and the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            _deliver(previous)


def _deliver(handler: object) -> None:
    if callable(handler):
        handler(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        raise KeyboardInterrupt


def ignore_interrupts() -> None:
    """For worker processes: Ctrl-C is the parent's to handle (it cancels the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
