"""A library run: walk → read current tags → analyse → decide → write → report rows.

Analysis runs on worker processes; every tag write happens here, in the main
process, one file at a time, atomically, and is journalled before it is made.
Each phase of each file is isolated (see :mod:`genrefy_tagger.isolation`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..isolation import ErrorLog, describe, interrupts_deferred, one_line
from ..listening.engine import Analysis
from ..listening.outside import unsure_reason
from ..reading.config import display_name
from ..reading.walk import Found, walk
from ..reading.windows import WindowPolicy
from ..reporting.report import ALREADY_ANALYSED, Row
from ..writing.journal import Journal
from ..writing.safe_write import LeftAlone, remove_stale_temps
from ..writing.tags import (
    SUPPORTED_EXTENSIONS,
    CannotHoldTags,
    TagError,
    TagState,
    format_provenance,
    left_alone_reason,
    parse_provenance,
    read_tags,
    write_genres,
)
from .cache import CachedPool, file_stat, open_cache
from .plan import file_identity


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    overwrite: bool = False  # replace genres someone else set
    force: bool = False  # re-analyse files this model already did
    top_k: int = 1
    min_confidence: float | None = None  # None: the bundle's recommendation
    keep_mtime: bool = False
    hard_links: str = "skip"  # a file with several names: skip, in-place or break (safe_write)
    recursive: bool = True
    jobs: int | None = None
    model: str | Path | None = None  # a shipped model name or a bundle folder
    policy: WindowPolicy | None = None  # None: the model's own window budget
    cache_path: Path | None = None  # the analysis cache (cache.py); None: no cache
    identify: bool = False  # record each file's size, mtime and fingerprint (for plans)
    ray: str | None = None  # analyse on a Ray cluster (ray_pool.py): auto, local or an address
    ship_audio: bool = False  # with ray: send the files' bytes to the workers
    # Files an interrupted run already reported (parquet_report.py): no row, no analysis.
    skip: Callable[[Path], bool] | None = None


@dataclass(frozen=True)
class _Pending:
    path: Path
    state: TagState
    future: Future[Analysis]
    identity: dict = field(default_factory=dict)
    stat: os.stat_result | None = None  # when it was submitted, to re-key the cache after a write


def find(paths: Iterable[str | Path], options: Options) -> list[Found]:
    """Every file a run over ``paths`` meets, in its order: walked first, the bar's total."""
    return list(walk(paths, extensions=SUPPORTED_EXTENSIONS, recursive=options.recursive))


def to_analyse(found: Iterable[Found], options: Options) -> int:
    """How many rows a run over ``found`` yields (a resumed report's files give none)."""
    return sum(options.skip is None or not options.skip(f.path) for f in found)


def run(
    paths: Iterable[str | Path],
    options: Options,
    journal: Journal | None,
    errors: ErrorLog | None = None,
    *,
    found: Iterable[Found] | None = None,
) -> Iterator[Row]:
    """Process every audio file under ``paths``; yield one :class:`Row` per file, in order.

    ``found``: the files of :func:`find`, when the caller walked ``paths`` already.

    Nothing one file does stops the run: any exception in any phase becomes that
    file's ``failed`` row with a one-line reason, and the traceback of anything
    unexpected goes to ``errors``.
    """
    errors = errors or ErrorLog(None)
    with _analysis_pool(options) as pool:
        model_tag = pool.bundle.tag
        queue: deque[Row | _Pending] = deque()
        in_flight = 0

        def settle(pending: _Pending) -> Row:
            return _settle(pending, pool, options, model_tag, journal, errors)

        cleaned: set[Path] = set()
        if found is None:
            found = walk(paths, extensions=SUPPORTED_EXTENSIONS, recursive=options.recursive)
        for file in found:
            if not options.dry_run and file.path.parent not in cleaned:
                # Copies a killed run left behind (its originals are whole): once per folder.
                cleaned.add(file.path.parent)
                remove_stale_temps(file.path.parent)
            if options.skip is not None and options.skip(file.path):
                continue
            entry = _start(file, options, model_tag, pool, errors)
            in_flight += isinstance(entry, _Pending)
            queue.append(entry)
            # Hand back everything already settled, and wait once too much is in flight.
            while queue and (
                isinstance(queue[0], Row) or queue[0].future.done() or in_flight > 2 * pool.jobs
            ):
                head = queue.popleft()
                if isinstance(head, _Pending):
                    in_flight -= 1
                    head = settle(head)
                yield head
        while queue:
            head = queue.popleft()
            yield settle(head) if isinstance(head, _Pending) else head


def _start(
    found: Found, options: Options, model_tag: str, pool: CachedPool, errors: ErrorLog
) -> Row | _Pending:
    """The row of a file that needs no analysis, or its analysis under way."""
    if found.problem:
        return Row(found.path, "failed", found.problem)
    try:
        identity = file_identity(found.path) if options.identify else {}
        entry = _prepare(found.path, options, model_tag)
    except Exception as exc:  # noqa: BLE001 - one file must not stop the run
        return Row(found.path, "failed", errors.unexpected(found.path, "reading tags", exc))
    if isinstance(entry, Row):
        return replace(entry, identity=identity)
    try:
        before = file_stat(found.path)
        return _Pending(found.path, entry, pool.submit(found.path), identity, before)
    except Exception as exc:  # noqa: BLE001
        reason = errors.unexpected(found.path, "starting the analysis", exc)
        return Row(found.path, "failed", reason, current=entry.genres, identity=identity)


@contextmanager
def _analysis_pool(options: Options) -> Iterator[CachedPool]:
    cache = open_cache(options.cache_path) if options.cache_path else None
    try:
        with CachedPool(
            options.model,
            cache=cache,
            policy=options.policy,
            min_confidence=options.min_confidence,
            jobs=options.jobs,
            refresh=options.force,
            pool_factory=_ray_pool(options) if options.ray else None,
        ) as pool:
            yield pool
    finally:
        if cache is not None:
            cache.close()


class ClusterError(Exception):
    """The Ray cluster of ``--ray`` cannot be joined or started, or its workers cannot run."""


def _ray_pool(options: Options) -> Callable[[], object]:
    def build() -> object:
        from .ray_pool import RayPool  # Ray is an optional extra: imported only for --ray

        address = options.ray or "auto"
        try:
            return RayPool(
                options.model,
                address=address,
                policy=options.policy,
                min_confidence=options.min_confidence,
                jobs=options.jobs,
                ship_audio=options.ship_audio,
            )
        except Exception as exc:  # noqa: BLE001 - whatever Ray raises, the run cannot start
            raise ClusterError(f"Ray cluster {address!r}: {describe(exc)}") from exc

    return build


def _settle(
    pending: _Pending,
    pool: CachedPool,
    options: Options,
    model_tag: str,
    journal: Journal | None,
    errors: ErrorLog,
) -> Row:
    analysis = pool.result(pending.future, pending.path)
    row = _finish(pending, analysis, options, model_tag, journal, errors)
    if row.action == "tag" and not options.dry_run and pending.stat is not None:
        # Only tags changed (write_genres verified the audio): the analysis still holds.
        try:
            pool.renew(pending.path, pending.stat)
        except Exception as exc:  # noqa: BLE001 - the file is written; only the cache lags
            errors.unexpected(pending.path, "updating the analysis cache", exc)
    return replace(row, identity=pending.identity)


def _prepare(path: Path, options: Options, model_tag: str) -> Row | TagState:
    """The row for a file that needs no analysis, or its current tags when it does."""
    try:
        state = read_tags(path)
    except CannotHoldTags as exc:  # raw AAC, AC-3…: nothing to write, and nothing wrong
        return Row(path, "unchanged", str(exc))
    except TagError as exc:
        return Row(path, "failed", one_line(str(exc), path))
    done_by = parse_provenance(state.provenance or "").get("model")
    if done_by == model_tag and not options.force:
        reason = ALREADY_ANALYSED + model_tag
        missed = _policy_changes(state, options)
        if missed:
            reason += f"; use --force to apply {' and '.join(missed)}"
        return Row(path, "unchanged", reason, current=state.genres)
    if state.genres and not options.overwrite and not _ours(state):
        return Row(path, "unchanged", "has a genre (use --overwrite)", current=state.genres)
    return state


def _policy_changes(state: TagState, options: Options) -> list[str]:
    """The options of this run that would change a file this model already tagged.

    (``--min-confidence`` never would: a re-analysis below it writes nothing.)
    """
    written = parse_provenance(state.provenance or "").get("genres")
    missed = []
    if written and len(written.split("|")) != options.top_k:
        missed.append(f"--top-k {options.top_k}")
    if options.overwrite and state.genres and not _ours(state):
        missed.append("--overwrite")
    return missed


def _ours(state: TagState) -> bool:
    """True when the genres in the file are exactly the ones genrefy wrote there."""
    written = parse_provenance(state.provenance or "").get("genres")
    return bool(written) and tuple(written.split("|")) == state.genres


def _finish(
    pending: _Pending,
    analysis: Analysis,
    options: Options,
    model_tag: str,
    journal: Journal | None,
    errors: ErrorLog,
) -> Row:
    path, state = pending.path, pending.state
    if analysis.error:
        reason = analysis.error
        if analysis.trace:
            reason = errors.unexpected(path, "analysing", reason=reason, trace=analysis.trace)
        return Row(path, "failed", reason, current=state.genres)
    try:
        row = _decide(path, state, analysis, options)
    except Exception as exc:  # noqa: BLE001 - one file must not stop the run
        reason = errors.unexpected(path, "deciding", exc)
        return Row(path, "failed", reason, current=state.genres)
    if row.action != "tag":
        return row
    if options.dry_run:  # say now what the real run would leave alone
        reason = left_alone_reason(row.path, row.proposed, options.hard_links)
        return replace(row, action="skipped", reason=reason) if reason else row
    try:
        # Ctrl-C waits until this file is written and journalled (or left untouched).
        with interrupts_deferred():
            _write(row, state, analysis, options, model_tag, journal)
    except LeftAlone as exc:  # on purpose (read-only, hard links, no room for a tag)
        return replace(row, action="skipped", reason=one_line(str(exc), path))
    except TagError as exc:
        return replace(row, action="failed", reason=one_line(str(exc), path))
    except Exception as exc:  # noqa: BLE001
        return replace(row, action="failed", reason=errors.unexpected(path, "writing", exc))
    return row


def _decide(path: Path, state: TagState, analysis: Analysis, options: Options) -> Row:
    """What should happen to the file: a row with action tag, unsure or unchanged."""
    decision = analysis.decision
    if decision is None:
        return Row(path, "unsure", analysis.note or "", current=state.genres)
    proposed = tuple(display_name(g) for g in decision.top(options.top_k))
    details = {
        "current": state.genres,
        "proposed": proposed,
        "confidence": decision.confidence,
        "agreement": decision.agreement,
        "runners_up": tuple((display_name(g), s) for g, s in decision.ranked[1:3]),
        "scores": tuple((display_name(g), s) for g, s in decision.ranked),
    }
    if decision.outside:
        return Row(path, "unsure", unsure_reason(decision), **details)
    if decision.unsure:
        return Row(path, "unsure", "below --min-confidence", **details)
    if proposed == state.genres:
        return Row(path, "unchanged", "already has this genre", **details)
    return Row(path, "tag", "", **details)


def _write(
    row: Row,
    state: TagState,
    analysis: Analysis,
    options: Options,
    model_tag: str,
    journal: Journal | None,
) -> None:
    assert analysis.decision is not None
    provenance = format_provenance(model_tag, analysis.decision.confidence, row.proposed)
    # Journalled once the copy is verified, just before it replaces the file: a crash
    # then can leave an entry for a change that never happened (undo skips it), never a
    # change without an entry.
    new = TagState(row.proposed, provenance)
    record = None if journal is None else journal.recorder(row.path, state, new, model=model_tag)
    write_genres(
        row.path,
        row.proposed,
        provenance=provenance,
        keep_mtime=options.keep_mtime,
        hard_links=options.hard_links,
        before_replace=record,
    )
