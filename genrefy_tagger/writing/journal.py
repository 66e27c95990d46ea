"""The change journal: one JSON line per file genrefy changed, and ``undo``.

Every run appends to its own JSON Lines file (``default_journal_path``). Its folder
is created and checked writable when the run starts, before any analysis; the file
itself only when the first change is recorded, so a run that changes nothing leaves
no journal. A line is written with a single ``write`` and fsynced before the file it
describes is touched, so after a crash the journal lists every changed file (and at
most one change that never happened), at worst followed by one torn line, which
``read_journal`` skips. A line looks like::

    {"time": "2026-11-25T16:40:00+00:00", "path": "/music/a.flac", "model": "gtzan-cnn-1",
     "previous": {"genres": ["Jazz"], "provenance": null},
     "new": {"genres": ["Rock", "Pop"], "provenance": "genrefy;model=…"}}

Lines written since byte-exact undo also carry ``"restore"`` (``restore.py``): the
sha256 of the original file and, where the original bytes the write changed are at
most 1 MB, those bytes (base64), where they go, and the written file's size and the
sha256 of the written bytes they replace (``"byte_exact": true``); otherwise
``"byte_exact": false`` and why. Such a line is written just before the verified copy
replaces the file, so the journal still never misses a change.

A path that is not valid UTF-8 keeps its bytes as JSON escapes (``"caf\\udce9.mp3"``,
see :mod:`genrefy_tagger.fsnames`), so ``undo`` finds the very same file.

``undo`` puts back the previous tags only where the file still holds exactly what
genrefy wrote; anything changed since is reported and left alone. A file whose bytes
are still exactly those written, with a byte-exact ``restore``, gets its original
bytes back, proven by the original's sha256; other files (older journals, regions
over the bound) get their previous tags back, tag-equal, as before.
"""

from __future__ import annotations

import io
import json
import logging
import mmap
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..fsnames import json_text
from ..isolation import describe, interrupts_deferred
from ..state import state_dir
from .restore import mapped, matches, patch, rebuild, usable
from .safe_write import replace_atomically, resolve_target
from .tags import TagError, TagState, read_tags, write_genres

if TYPE_CHECKING:
    from ..running.cache import AnalysisCache

log = logging.getLogger(__name__)

_STATE_HINT = "set GENREFY_STATE_DIR or use --journal FILE"


class JournalError(Exception):
    """The journal cannot be kept where it should be; the message is one line."""


class Journal:
    """Append-only JSON Lines record of changed files, durable line by line.

    Creating one checks that ``path`` can be written (JournalError if not); the file
    appears with the first :meth:`record`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self._fd: int | None = None
        self._closed = False
        self.recorded = 0  # changes recorded by this instance

    def _open(self) -> int:
        if self._closed:
            raise ValueError("journal is closed")
        if self._fd is None:
            # O_APPEND: each line lands whole at the end even if two runs share a file.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if _ends_torn(self.path):
                # A crash mid-line: start on a fresh line so the next record stays readable.
                self._write(b"\n")
        return self._fd

    def record(
        self,
        path: Path,
        previous: TagState,
        new: TagState,
        *,
        model: str,
        restore: dict[str, Any] | None = None,
    ) -> None:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "path": os.path.abspath(path),
            "model": model,
            "previous": _state_to_json(previous),
            "new": _state_to_json(new),
        }
        if restore is not None:
            entry["restore"] = restore
        self._write(json_text(entry).encode("utf-8") + b"\n")
        self.recorded += 1

    def recorder(
        self, path: Path, previous: TagState, new: TagState, *, model: str
    ) -> Callable[[Path, Path, TagState], None]:
        """A ``before_replace`` for ``write_genres``: records the change with its restore data.

        The state recorded as new is the one the copy holds (``written``): an ID3v1-only
        write keeps no provenance, and the undo must find what is really in the file.
        """

        def record(original: Path, copy: Path, written: TagState | None = None) -> None:
            state = new if written is None else written
            try:
                self.record(path, previous, state, model=model, restore=patch(original, copy))
            except OSError as exc:
                raise TagError(f"cannot record the change in the journal: {describe(exc)}") from exc

        return record

    def close(self) -> None:
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        fd = self._open()
        written = os.write(fd, data)
        if written != len(data):  # only on a full disk; finish the line anyway
            os.write(fd, data[written:])
        os.fsync(fd)


def check_writable(path: Path) -> None:
    """Create ``path``'s folder and prove a file can be written there; JournalError if not.

    Nothing is left behind: an existing journal is opened for appending (and not
    changed), otherwise a probe file is created and removed again.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            fd, probe = tempfile.mkstemp(prefix=".genrefy-probe-", dir=path.parent)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        message = f"cannot write the journal {path}: {describe(exc)} ({_STATE_HINT})"
        raise JournalError(message) from exc


def _ends_torn(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def default_journal_path(now: datetime | None = None) -> Path:
    """``<state dir>/journal/<YYYYmmdd-HHMMSS>.jsonl`` for a run started at ``now``.

    The state dir is ``$GENREFY_STATE_DIR``, else ``$XDG_STATE_HOME/genrefy``,
    else ``~/.local/state/genrefy``.
    """
    now = now or datetime.now()
    try:
        base = state_dir()
    except RuntimeError:  # no HOME and no password entry
        base = Path("~")
    if not base.is_absolute():
        raise JournalError(f"cannot tell where to keep the journal ({_STATE_HINT})")
    return base / "journal" / f"{now:%Y%m%d-%H%M%S}.jsonl"


def read_journal(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every well-formed entry, in order. A torn or corrupt line is skipped."""
    entries = []
    lines = Path(path).read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = _parse_line(line)
        if entry is None:
            torn_end = number == len(lines)  # no newline after it: cut off by a crash
            log.log(
                logging.DEBUG if torn_end else logging.WARNING, "%s:%d unreadable", path, number
            )
            continue
        entries.append(entry)
    return entries


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line.decode("utf-8"))
        _state_from_json(entry["previous"])
        _state_from_json(entry["new"])
        if isinstance(entry["path"], str):
            return entry
    except (ValueError, KeyError, TypeError):
        pass
    return None


@dataclass(frozen=True)
class UndoResult:
    path: Path
    action: str  # "restored" | "skipped" | "failed"
    reason: str


#: The reason for a file that holds exactly its previous genres: restored before, or
#: a change journalled but never made (the run was stopped before or during the write).
NOTHING_TO_UNDO = "nothing to undo: it has its previous genres"


def undo(
    path_to_journal: str | os.PathLike,
    *,
    dry_run: bool = False,
    cache: AnalysisCache | None = None,
    hard_links: str = "skip",
) -> Iterator[UndoResult]:
    """Restore each journalled file's previous tags, newest change first.

    A file is only written if it still holds what genrefy wrote; one journalled
    several times goes back to its state before the first of those changes.
    With ``dry_run`` nothing is written and "restored" means "would restore".
    ``cache``: re-keyed after each restore, as after a tagging write (only tags
    changed, the audio was verified identical), so a re-run need not listen again.
    ``hard_links``: as for a write (``safe_write``).
    """
    by_path: dict[str, list[dict[str, Any]]] = {}
    last_seen: dict[str, int] = {}
    for index, entry in enumerate(read_journal(path_to_journal)):
        by_path.setdefault(entry["path"], []).append(entry)
        last_seen[entry["path"]] = index
    for name in sorted(by_path, key=last_seen.__getitem__, reverse=True):
        try:
            # Ctrl-C waits until this file is restored (or left untouched).
            with interrupts_deferred():
                result = _undo_file(
                    Path(name), by_path[name], dry_run=dry_run, cache=cache, hard_links=hard_links
                )
        except Exception as exc:  # noqa: BLE001 - one file must not stop the undo
            log.debug("undo of %s failed", name, exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {describe(exc, name)}"
            result = UndoResult(Path(name), "failed", reason)
        yield result


def _undo_file(
    path: Path,
    entries: list[dict[str, Any]],
    *,
    dry_run: bool,
    cache: AnalysisCache | None,
    hard_links: str,
) -> UndoResult:
    ours = _state_from_json(entries[-1]["new"])
    target = _state_from_json(entries[-1]["previous"])
    walked = [entries[-1]]
    # Walk back through earlier changes that this one continued.
    for entry in reversed(entries[:-1]):
        if _state_from_json(entry["new"]) != target:
            break
        target = _state_from_json(entry["previous"])
        walked.append(entry)
    try:
        current = read_tags(path)
    except TagError as exc:
        return UndoResult(path, "failed", str(exc))
    if current == target:
        return UndoResult(path, "skipped", NOTHING_TO_UNDO)
    if current != ours:
        return UndoResult(path, "skipped", f"changed since (now {_describe(current)}), left alone")
    try:
        before = os.stat(path)
        exact = ", byte for byte" if _byte_exact(path, walked, hard_links, dry_run) else ""
        if dry_run:
            return UndoResult(
                path, "restored", f"dry run: would go back to {_describe(target)}{exact}"
            )
        if not exact:
            write_genres(path, target.genres, provenance=target.provenance, hard_links=hard_links)
    except TagError as exc:
        return UndoResult(path, "failed", str(exc))
    if cache is not None:
        try:
            cache.renew(path, before)
        except Exception as exc:  # noqa: BLE001 - the file is restored; only the cache lags
            log.warning("analysis cache: could not update %s: %s", path, exc)
    return UndoResult(path, "restored", f"back to {_describe(target)}{exact}")


def _byte_exact(path: Path, walked: list[dict[str, Any]], hard_links: str, dry_run: bool) -> bool:
    """Give ``path`` its bytes from before the first walked change back; False if it cannot.

    Possible only when every walked change kept its restore data and the file still
    holds exactly what genrefy wrote; the rebuilt file must hash as the original did.
    """
    if not all(usable(entry.get("restore")) for entry in walked):
        return False
    try:
        real, st = resolve_target(path)
        with mapped(real) as current:
            data: bytes | mmap.mmap = current
            for entry in walked[:-1]:  # newest first; the last is written straight to the copy
                if not matches(data, entry["restore"]):
                    return False
                buffer = io.BytesIO()
                if not rebuild(data, entry["restore"], buffer):
                    return False
                data = buffer.getvalue()
            last = walked[-1]["restore"]
            if not matches(data, last):
                return False
            if dry_run:  # rebuilt and hashed, but kept nowhere
                return rebuild(data, last, _Discard())

            def edit(tmp: Path) -> None:
                with open(tmp, "wb") as f:
                    if not rebuild(data, last, f):
                        raise TagError("the rebuilt file does not hash as the original")

            replace_atomically(
                real, st, edit, None, keep_mtime=False, hard_links=hard_links, copy=False
            )
    except (TagError, OSError):
        log.debug("byte-exact undo of %s not possible", path, exc_info=True)
        return False
    return True


class _Discard(io.RawIOBase):
    """A sink for a dry run's rebuilt file: only its hash matters."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _describe(state: TagState) -> str:
    genres = " | ".join(state.genres) if state.genres else "no genre"
    return genres if state.provenance is None else f"{genres}, tagged by genrefy"


def _state_to_json(state: TagState) -> dict[str, Any]:
    return {"genres": list(state.genres), "provenance": state.provenance}


def _state_from_json(data: Any) -> TagState:
    genres, provenance = data["genres"], data["provenance"]
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        raise TypeError("genres must be a list of strings")
    if provenance is not None and not isinstance(provenance, str):
        raise TypeError("provenance must be a string or null")
    return TagState(tuple(genres), provenance)
