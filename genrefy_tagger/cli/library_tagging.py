"""Genres for the items and albums of a beets library: what ``beet genrefy`` and its
import stage do, without the plugin plumbing (``beetsplug/genrefy.py``).

All listening is done by :mod:`genrefy_tagger.listening.engine` (through the analysis cache);
this module only decides which items to ask about and stores the answers through
beets (``store`` and ``try_sync``), so beets stays the only writer of tags and
database. It needs beets, so only the plugin imports it; the engine (numpy, LiteRT)
loads on first use, which keeps ``beet --help`` light.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from beets import ui
from beets.library import Album, Item
from beets.util import displayable_path

from ..listening.outside import mostly_outside, unsure_reason
from ..reading.config import display_name
from ..running.progress import progress_bar
from .beets_fields import (
    GENRE_FIELD,
    OWN_FIELDS,
    album_label,
    current_genres,
    item_label,
    own,
    set_genres,
    show,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from beets.library import LibModel

    from ..listening.engine import Analysis
    from ..listening.vote import Decision
    from ..reporting.report import Row
    from ..running.cache import CachedPool

#: An album whose winning genre has fewer than this share of its voting tracks is reported.
LOW_AGREEMENT = 0.5


@dataclass(frozen=True)
class Run:
    """The settings of one command or import, merged from config and options."""

    model: str | None
    min_confidence: float | None  # None: the bundle's recommended threshold
    jobs: int | None
    force: bool = False
    count: int = 1
    names: dict[str, str] = field(default_factory=dict)
    album: bool = False
    pretend: bool = False
    write: bool = False
    cache: bool = True  # share genrefy-tag's analysis cache
    # A file with several hard links: skip it (default), let beets write it in place (every
    # name sees the tags; beets writes in place anyway) or break the link first.
    hard_links: str = "skip"
    progress: bool = False  # a bar on a terminal: ``beet genrefy``, not an import


class LibraryTagger:
    """Tags items and albums, one command or import at a time.

    One analysis pool (one model load per worker) serves a whole command or import;
    :meth:`close` ends it. ``rows`` collects report rows while it is a list (``--report``).
    ``log`` is the plugin's logger (beets' ``{}`` formatting).
    """

    def __init__(self, log: Any) -> None:
        self._log = log
        self._pool: CachedPool | None = None
        self._pool_key: tuple[Any, ...] | None = None
        self.rows: list[Row] | None = None

    # ---------------------------------------------------------------- the pool

    def close(self) -> None:
        """Shut the worker processes down (end of a command or of an import)."""
        if self._pool is not None:
            self._pool.close()
            if self._pool.cache is not None:
                self._pool.cache.close()
        self._pool, self._pool_key = None, None

    def pool(self, run: Run) -> CachedPool:
        from ..running.cache import CachedPool, open_cache

        key = (run.model, run.min_confidence, run.jobs, run.cache)
        if self._pool is None or self._pool_key != key:
            self.close()
            # The cache genrefy-tag fills: an item it analysed is not listened to again.
            cache = open_cache(None) if run.cache else None
            self._pool = CachedPool(
                run.model, cache=cache, min_confidence=run.min_confidence, jobs=run.jobs
            )
            self._pool_key = key
        return self._pool

    def threshold(self, run: Run) -> float:
        if run.min_confidence is not None:
            return run.min_confidence
        return self.pool(run).bundle.min_confidence

    def _analyse(self, items: Iterable[Item], run: Run) -> Iterator[tuple[Item, Analysis]]:
        """(item, analysis) in input order; at most 2 × jobs files in flight.

        ``pool.result`` never raises: a worker that dies fails only the file it died on.
        """
        pending: deque[tuple[Item, str, Future[Analysis]]] = deque()
        pool: CachedPool | None = None
        for item in items:
            pool = pool or self.pool(run)  # no model load when nothing needs one
            path = os.fsdecode(item.path)
            pending.append((item, path, pool.submit(path)))
            while len(pending) > 2 * pool.jobs or (pending and pending[0][2].done()):
                done, path, future = pending.popleft()
                yield done, pool.result(future, path)
        while pending:
            assert pool is not None
            done, path, future = pending.popleft()
            yield done, pool.result(future, path)

    # ------------------------------------------------------------ what to show

    def say(self, run: Run, line: str, level: str = "info") -> None:
        """Pretend mode prints the plan; otherwise it is beets' log (quiet during imports)."""
        if run.pretend:
            from tqdm import tqdm

            with tqdm.external_write_mode():  # above the progress bar, not through it
                ui.print_(line)
        else:
            getattr(self._log, level)("{}", line)

    @staticmethod
    def name(label: str, run: Run) -> str:
        return run.names.get(label) or display_name(label)

    def _unsure_reason(self, analysis: Analysis, run: Run) -> str:
        if analysis.decision is None:
            return analysis.note or "no decision"
        d = analysis.decision
        top = ", ".join(f"{self.name(g, run)} {s:.2f}" for g, s in d.ranked[:2])
        if d.outside:
            return f"{unsure_reason(d)}; {top}"
        return f"confidence {d.confidence:.2f} < {self.threshold(run):.2f}; {top}"

    def _row_details(self, analysis: Analysis, run: Run) -> dict[str, Any]:
        d = analysis.decision
        if d is None:
            return {}
        return {
            "proposed": tuple(self.name(g, run) for g in d.top(run.count)),
            "confidence": d.confidence,
            "agreement": d.agreement,
            "runners_up": tuple((self.name(g, run), s) for g, s in d.ranked[1:3]),
        }

    def _add_row(self, item: Item, action: str, reason: str = "", **details: Any) -> None:
        if self.rows is None:
            return
        from ..reporting.report import Row
        from ..running.plan import file_identity

        path = os.fsdecode(item.path)
        current = tuple(current_genres(item))
        identity = file_identity(path)
        self.rows.append(Row(path, action, reason, current, identity=identity, **details))

    def write_report(self, path: str, items: list[Item], run: Run) -> None:
        """``--report``: the rows collected by :meth:`tag_items`, as genrefy-tag writes them.

        ReportError (one line) when the report cannot be written.
        """
        from ..reporting.report import ReportWriter
        from .review_cli import common_folder, run_meta

        root = common_folder(os.fsdecode(i.path) for i in items if i.path)
        meta = run_meta(
            root,
            self.pool(run).bundle,
            self.threshold(run),
            top_k=run.count,
            overwrite=run.force,
            dry_run=run.pretend,
            name=lambda label: self.name(label, run),
        )
        with ReportWriter(path, meta) as writer:
            for row in self.rows or []:
                writer.write(row)
        ui.print_(f"report: {path}")

    # ---------------------------------------------------------------- tagging

    def _usable(self, item: Item, run: Run, counts: Counter[str]) -> bool:
        """Whether an item should be analysed; logs why not."""
        if not item.path:
            self._log.warning("{}: has no file path; skipped", item_label(item))
            counts["failed"] += 1
            return False
        if current_genres(item) and not run.force:
            self._log.debug("{}: keeps {}", item_label(item), show(current_genres(item)))
            counts["kept their genres (-f replaces)"] += 1
            self._add_row(item, "unchanged", "has a genre (use -f)")
            return False
        return True

    def _assign(self, obj: LibModel, names: list[str], decision: Decision, run: Run) -> None:
        if own(obj, "genrefy_previous") is None:  # keep the genres from before the first run
            obj["genrefy_previous"] = json.dumps(current_genres(obj))
        set_genres(obj, names)
        obj["genrefy_genre"] = decision.genre
        obj["genrefy_confidence"] = float(decision.confidence)
        obj["genrefy_model"] = self.pool(run).bundle.tag

    def tag_items(self, items: Iterable[Item], run: Run, counts: Counter[str]) -> list[Item]:
        """Classify and tag items one by one; returns the items changed."""
        changed, items = [], list(items)
        bar = progress_bar(len(items), quiet=not run.progress)

        def usable(item: Item) -> bool:
            keep = self._usable(item, run, counts)
            bar.update(not keep)  # a skipped item is done at once
            return keep

        with bar:
            for item, analysis in self._analyse(filter(usable, items), run):
                bar.update()
                label = item_label(item)
                if analysis.error:
                    path = displayable_path(item.path)
                    self._log.warning("{}: cannot analyse {}: {}", label, path, analysis.error)
                    counts["failed"] += 1
                    self._add_row(item, "failed", analysis.error)
                elif analysis.unsure:
                    self.say(run, f"{label}: unsure ({self._unsure_reason(analysis, run)})")
                    counts["unsure"] += 1
                    reason = analysis.note or "below min_confidence"
                    self._add_row(item, "unsure", reason, **self._row_details(analysis, run))
                else:
                    d = analysis.decision
                    assert d is not None
                    names = [self.name(g, run) for g in d.top(run.count)]
                    self._add_row(item, "tag", **self._row_details(analysis, run))
                    old = show(current_genres(item))
                    self.say(
                        run,
                        f"{label}: {old} → {show(names)} "
                        f"(confidence {d.confidence:.2f}, agreement {d.agreement:.2f})",
                    )
                    counts["to tag" if run.pretend else "tagged"] += 1
                    if not run.pretend:
                        self._assign(item, names, d, run)
                        self._sync(item, run)
                        changed.append(item)
        return changed

    def tag_album(
        self, album: Album, run: Run, counts: Counter[str], items: list[Item] | None = None
    ) -> list[Item]:
        """One genre for the whole album from a vote of its tracks; returns the items changed."""
        from ..listening.vote import album_vote

        items = list(album.items()) if items is None else items
        label = album_label(album)
        if not run.force and (current_genres(album) or any(current_genres(i) for i in items)):
            self._log.debug("{}: has genres; kept", label)
            counts["kept their genres (-f replaces)"] += 1
            return []
        track_lines, decisions, names = [], [], []
        for item in items:
            if not item.path:
                self._log.warning("{}: has no file path; no vote", item_label(item))
        for item, analysis in self._analyse([i for i in items if i.path], run):
            if analysis.error:
                self._log.warning("{}: cannot analyse: {}", item_label(item), analysis.error)
                track_lines.append(f"  {item_label(item)}: cannot analyse: {analysis.error}")
            elif analysis.decision is None:
                track_lines.append(f"  {item_label(item)}: no vote ({analysis.note})")
            else:
                d = analysis.decision
                decisions.append(d)
                track_lines.append(
                    f"  {item_label(item)}: {self.name(d.genre, run)} "
                    f"(confidence {d.confidence:.2f}, agreement {d.agreement:.2f})"
                )
        threshold = self.threshold(run) if decisions else 0.0
        decision, shares, tie = album_vote(decisions, min_confidence=threshold)
        votes = ", ".join(f"{self.name(g, run)} {s:.2f}" for g, s in shares.items())
        if decision is None:
            head = f"{label}: unsure (no track could be judged)"
        elif tie:
            tied = [
                self.name(g, run) for g, s in shares.items() if abs(s - decision.confidence) < 1e-9
            ]
            head = f"{label}: unsure, tie between {' and '.join(tied)} (votes: {votes})"
        elif decision.unsure:
            head = f"{label}: unsure (vote share {decision.confidence:.2f} < {threshold:.2f})"
        elif (foreign := mostly_outside(decisions)) is not None:
            # An album of salsa must not become Jazz by the vote of its tracks' picks.
            decision = replace(decision, unsure=True, outside=foreign)
            head = f"{label}: unsure (most of its tracks {unsure_reason(decision)})"
        else:
            names = [self.name(g, run) for g in decision.top(run.count)]
            old = current_genres(album) or list(
                dict.fromkeys(g for item in items for g in current_genres(item))
            )
            head = (
                f"{label}: {show(old)} → {show(names)} "
                f"(vote share {decision.confidence:.2f}, agreement {decision.agreement:.2f}, "
                f"{len(decisions)} of {len(items)} tracks voted)"
            )
        if decision is not None and decision.agreement < LOW_AGREEMENT:
            head += f"; low agreement: {decision.agreement:.0%} of voting tracks"
        self.say(run, head)
        self.say(run, f"  votes: {votes or '(none)'}")
        for line in track_lines:
            self.say(run, line, level="debug")
        if decision is None or decision.unsure:
            counts["unsure"] += 1
            return []
        counts["to tag" if run.pretend else "tagged"] += 1
        if run.pretend:
            return []
        if GENRE_FIELD in Album._fields:
            self._assign(album, names, decision, run)
            album.store(inherit=False)  # tracks below get their own previous genres
        for item in items:
            self._assign(item, names, decision, run)
            self._sync(item, run)
        return items

    def undo(self, obj: LibModel, run: Run) -> int:
        """Restore the genres from before genrefy and drop its attributes; returns items done."""
        restored = 0
        targets: list[LibModel] = [obj, *obj.items()] if isinstance(obj, Album) else [obj]
        for target in targets:
            previous = own(target, "genrefy_previous")
            if previous is None:
                continue
            old = json.loads(previous)
            label = item_label(target) if isinstance(target, Item) else album_label(target)
            self.say(run, f"{label}: {show(current_genres(target))} → {show(old)} (undo)")
            restored += isinstance(target, Item)
            if run.pretend:
                continue
            set_genres(target, old)
            for key in OWN_FIELDS:
                if own(target, key) is not None:
                    del target[key]
            if isinstance(target, Album):
                target.store(inherit=False)
            else:
                self._sync(target, run)
        return restored

    def _sync(self, item: Item, run: Run) -> None:
        """Store ``item`` (and write its tags); its cached analysis follows the file.

        beets changes only the tags, so the analysis stays true: re-keying it to the
        file's new size and time saves a second listen by ``genrefy-tag`` or the next run.
        """
        from pathlib import Path

        from ..running.cache import file_stat
        from ..writing.safe_write import prepare_links

        path = os.fsdecode(item.path) if item.path else None
        # beets writes into the file itself: a hard-linked file's other names would change too.
        refused = prepare_links(Path(path), run.hard_links) if run.write and path else None
        if refused:
            self.say(run, f"{item_label(item)}: {refused}", "warning")
            item.load()  # forget the genres assigned in memory: the database stays as the file
            return
        before = file_stat(path) if run.write and run.cache and path else None
        item.try_sync(write=run.write, move=False)
        if before is not None:
            try:
                self.pool(run).renew(path, before)
            except Exception as exc:  # noqa: BLE001 - the tags are written; only the cache lags
                self._log.warning("analysis cache: could not update {}: {}", path, exc)
