"""A library run: walk → read current tags → analyse → decide → write → report rows.

Analysis runs on worker processes; every tag write happens here, in the main
process, one file at a time, atomically, and is journalled before the next.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from .cache import CachedPool, open_cache
from .config import display_name
from .engine import Analysis
from .journal import Journal
from .plan import file_identity
from .report import Row
from .tags import (
    SUPPORTED_EXTENSIONS,
    TagError,
    TagState,
    format_provenance,
    parse_provenance,
    read_tags,
    write_genres,
)
from .walk import walk
from .windows import WindowPolicy


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    overwrite: bool = False  # replace genres someone else set
    force: bool = False  # re-analyse files this model already did
    top_k: int = 1
    min_confidence: float | None = None  # None: the bundle's recommendation
    keep_mtime: bool = False
    recursive: bool = True
    jobs: int | None = None
    model: str | Path | None = None  # a shipped model name or a bundle folder
    policy: WindowPolicy | None = None  # None: the model's own window budget
    cache_path: Path | None = None  # the analysis cache (cache.py); None: no cache
    identify: bool = False  # record each file's size, mtime and fingerprint (for plans)


@dataclass(frozen=True)
class _Pending:
    path: Path
    state: TagState
    future: Future[Analysis]
    identity: dict = field(default_factory=dict)
    stat: os.stat_result | None = None  # when it was submitted, to re-key the cache after a write


def run(paths: Iterable[str | Path], options: Options, journal: Journal | None) -> Iterator[Row]:
    """Process every audio file under ``paths``; yield one :class:`Row` per file, in order."""
    with _analysis_pool(options) as pool:
        model_tag = pool.bundle.tag
        queue: deque[Row | _Pending] = deque()
        in_flight = 0
        for found in walk(paths, extensions=SUPPORTED_EXTENSIONS, recursive=options.recursive):
            if found.problem:
                queue.append(Row(found.path, "failed", found.problem))
            else:
                identity = file_identity(found.path) if options.identify else {}
                entry = _prepare(found.path, options, model_tag)
                if isinstance(entry, TagState):
                    before = _stat(found.path)
                    entry = _Pending(found.path, entry, pool.submit(found.path), identity, before)
                    in_flight += 1
                else:
                    entry = replace(entry, identity=identity)
                queue.append(entry)
            # Hand back everything already settled, and wait once too much is in flight.
            while queue and (
                isinstance(queue[0], Row) or queue[0].future.done() or in_flight > 2 * pool.jobs
            ):
                head = queue.popleft()
                if isinstance(head, _Pending):
                    in_flight -= 1
                    head = _settle(head, pool, options, model_tag, journal)
                yield head
        while queue:
            head = queue.popleft()
            if isinstance(head, _Pending):
                head = _settle(head, pool, options, model_tag, journal)
            yield head


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
        ) as pool:
            yield pool
    finally:
        if cache is not None:
            cache.close()


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _settle(
    pending: _Pending, pool: CachedPool, options: Options, model_tag: str, journal: Journal | None
) -> Row:
    row = _finish(pending, pending.future.result(), options, model_tag, journal)
    if row.action == "tag" and not options.dry_run and pending.stat is not None:
        # Only tags changed (write_genres verified the audio): the analysis still holds.
        pool.renew(pending.path, pending.stat)
    return replace(row, identity=pending.identity)


def _prepare(path: Path, options: Options, model_tag: str) -> Row | TagState:
    """The row for a file that needs no analysis, or its current tags when it does."""
    try:
        state = read_tags(path)
    except TagError as exc:
        return Row(path, "failed", str(exc))
    done_by = parse_provenance(state.provenance or "").get("model")
    if done_by == model_tag and not options.force:
        return Row(path, "unchanged", f"already analysed by {model_tag}", current=state.genres)
    if state.genres and not options.overwrite and not _ours(state):
        return Row(path, "unchanged", "has a genre (use --overwrite)", current=state.genres)
    return state


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
) -> Row:
    path, state = pending.path, pending.state
    if analysis.error:
        return Row(path, "failed", analysis.error, current=state.genres)
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
    }
    if decision.unsure:
        return Row(path, "unsure", "below --min-confidence", **details)
    if proposed == state.genres:
        return Row(path, "unchanged", "already has this genre", **details)
    if options.dry_run:
        return Row(path, "tag", "", **details)
    provenance = format_provenance(model_tag, decision.confidence, proposed)
    new = TagState(proposed, provenance)
    if journal is not None:
        # Journalled before the write: a crash mid-write can leave an entry for a
        # change that never happened (undo skips it), never a change without an entry.
        journal.record(path, state, new, model=model_tag)
    try:
        write_genres(path, proposed, provenance=provenance, keep_mtime=options.keep_mtime)
    except TagError as exc:
        return Row(path, "failed", str(exc), **details)
    return Row(path, "tag", "", **details)
