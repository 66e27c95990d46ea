"""Audio-based genres inside beets: ``beet genrefy`` and, optionally, on import.

All listening is done by :mod:`genrefy_tagger.engine`; this module only decides
which items to ask about and stores the answers through beets (``store`` and
``try_write``/``try_sync``), so beets stays the only writer of tags and database.

The engine (and with it numpy, librosa and LiteRT) is imported on first use, so
beets' start-up and ``beet --help`` stay light and never touch TensorFlow.
"""

from __future__ import annotations

import json
import os
import traceback
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from beets import ui
from beets.dbcore import types
from beets.library import Album, Item
from beets.plugins import BeetsPlugin
from beets.util import displayable_path

from genrefy_tagger.config import display_name

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import LibModel, Library

    from genrefy_tagger.cache import CachedPool
    from genrefy_tagger.engine import Analysis
    from genrefy_tagger.vote import Decision

#: beets 2.7+ keeps a list in ``genres`` (``genre`` is deprecated); older beets one string.
GENRE_FIELD = "genres" if "genres" in Item._fields else "genre"
#: How pre-2.7 beets (lastgenre's default ``separator``) joins several genres in one string.
LEGACY_SEPARATOR = ", "
#: Flexible attributes this plugin owns; ``--undo`` removes all of them.
OWN_FIELDS = ("genrefy_genre", "genrefy_confidence", "genrefy_model", "genrefy_previous")
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


def _own(obj: LibModel, key: str) -> Any:
    """A field of the object itself: an item's ``get`` would fall back to its album's."""
    return obj.get(key, with_album=False) if isinstance(obj, Item) else obj.get(key)


def current_genres(obj: LibModel) -> list[str]:
    value = _own(obj, GENRE_FIELD)
    if GENRE_FIELD == "genres":
        return [g for g in (value or []) if g.strip()]
    return [value] if value and value.strip() else []


def _set_genres(obj: LibModel, names: list[str]) -> None:
    obj[GENRE_FIELD] = list(names) if GENRE_FIELD == "genres" else LEGACY_SEPARATOR.join(names)


def _show(names: list[str]) -> str:
    return "; ".join(names) if names else "(none)"


def _item_label(item: Item) -> str:
    if item.title:
        return f"{item.artist} - {item.title}"
    return displayable_path(os.path.basename(item.path or b"?"))


def _album_label(album: Album) -> str:
    artist = album.albumartist or next((item.artist for item in album.items()), "")
    return f"{artist} - {album.album}"


def _beets_writes(task: ImportTask) -> bool:
    # Mirrors ImportTask.manipulate_files: beets writes tags only for applied (or
    # retagged) metadata, so after an as-is import the genre would reach the DB only.
    flag = getattr(task, "choice_flag", None)
    return bool(getattr(task, "apply", False)) or getattr(flag, "name", "") == "RETAG"


class GenrefyPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = {
        "genrefy_genre": types.STRING,
        "genrefy_confidence": types.FLOAT,
        "genrefy_model": types.STRING,
        "genrefy_previous": types.STRING,
    }
    album_types: ClassVar[dict[str, types.Type]] = item_types

    def __init__(self) -> None:
        super().__init__()
        self.config.add(
            {
                "auto": True,
                "force": False,
                "min_confidence": None,
                "count": 1,
                "album": False,
                "names": {},
                "model": None,
                "jobs": 0,
                "cache": True,
            }
        )
        # One pool (one model load per worker) serves the whole command or import.
        self._pool: CachedPool | None = None
        self._rows: list | None = None  # report rows of the running command (--report)
        self._pool_key: tuple[Any, ...] | None = None
        # Items changed during an as-is import, written once their files are in place.
        self._unwritten: set[int] = set()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.write_imported)
        self.register_listener("import", self.close)
        self.register_listener("cli_exit", self.close)

    # ----------------------------------------------------------------- settings

    def settings(self, **overrides: Any) -> Run:
        threshold = self.config["min_confidence"].get()
        names = self.config["names"].get(dict) or {}
        model = self.config["model"].as_filename() if self.config["model"].get() else None
        values: dict[str, Any] = {
            "model": model,
            "min_confidence": None if threshold is None else float(threshold),
            "jobs": self.config["jobs"].get(int) or None,
            "force": self.config["force"].get(bool),
            "count": max(1, self.config["count"].get(int)),
            "names": {str(k): str(v) for k, v in names.items()},
            "album": self.config["album"].get(bool),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["min_confidence"] is not None and not 0.0 <= values["min_confidence"] <= 1.0:
            raise ui.UserError("genrefy: min_confidence must be between 0 and 1")
        return Run(**values)

    def _name(self, label: str, run: Run) -> str:
        return run.names.get(label) or display_name(label)

    # ------------------------------------------------------------------ command

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("genrefy", help="set genres by listening to the audio")
        cmd.parser.set_usage("%prog [options] [QUERY]")
        add = cmd.parser.add_option
        add("-p", "--pretend", action="store_true", help="show what would change; change nothing")
        add("-f", "--force", action="store_true", default=None, help="replace existing genres")
        add("-a", "--albums", dest="album", action="store_true", default=None, help="one per album")
        add("-A", "--items", dest="album", action="store_false", help="one per track (default)")
        add("--min-confidence", type="float", metavar="X", help="threshold (default: the model's)")
        add("--undo", action="store_true", help="restore the genres from before genrefy")
        add("--report", metavar="FILE", help="also write FILE: .json, .csv or .html (review page)")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts: Any, args: list[str]) -> None:
        from genrefy_tagger.model import BundleError

        run = self.settings(
            force=opts.force,
            album=opts.album,
            min_confidence=opts.min_confidence,
            pretend=opts.pretend,
            write=ui.should_write() and not opts.pretend,
        )
        counts: Counter[str] = Counter()
        report = opts.report
        if report and (run.album or opts.undo):
            raise ui.UserError("genrefy: --report works per track, not with -a or --undo")
        if report and not report.lower().endswith((".json", ".csv", ".html")):
            raise ui.UserError("genrefy: --report must end in .json, .csv or .html")
        self._rows = [] if report else None
        try:
            objs = list(lib.albums(args) if run.album else lib.items(args))
            if not objs:
                self._log.info("no {} match the query", "albums" if run.album else "items")
            elif opts.undo:
                restored = sum(self.undo(obj, run) for obj in objs)
                counts["to restore" if run.pretend else "restored"] = restored
            elif run.album:
                for album in objs:
                    self.tag_album(album, run, counts)
            else:
                self.tag_items(objs, run, counts)  # one stream: all workers stay busy
            if report and objs:
                self._write_report(report, objs, run)
        except BundleError as exc:
            raise ui.UserError(f"genrefy: {exc}") from exc
        except BrokenProcessPool as exc:
            raise ui.UserError(f"genrefy: a worker process died ({exc}); try fewer jobs") from exc
        finally:
            self.close()
            self._rows = None
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
        prefix = "pretend, nothing changed" if run.pretend else "done"
        self._report(run, f"{prefix}: {summary or 'nothing to do'}")

    def _report(self, run: Run, line: str, level: str = "info") -> None:
        """Pretend mode prints the plan; otherwise it is beets' log (quiet during imports)."""
        if run.pretend:
            ui.print_(line)
        else:
            getattr(self._log, level)("{}", line)

    # ----------------------------------------------------------------- analysis

    def _write_report(self, path: str, items: list[Item], run: Run) -> None:
        """``--report``: the rows collected by :meth:`tag_items`, as genrefy-tag writes them."""
        from genrefy_tagger.report import ReportWriter
        from genrefy_tagger.review_cli import common_folder, run_meta

        root = common_folder(os.fsdecode(i.path) for i in items if i.path)
        meta = run_meta(
            root,
            self._get_pool(run).bundle,
            self._threshold(run),
            top_k=run.count,
            overwrite=run.force,
            dry_run=run.pretend,
            name=lambda label: self._name(label, run),
        )
        with ReportWriter(path, meta) as writer:
            for row in self._rows or []:
                writer.write(row)
        ui.print_(f"report: {path}")

    def _add_row(self, item: Item, action: str, reason: str = "", **details: Any) -> None:
        if self._rows is None:
            return
        from genrefy_tagger.plan import file_identity
        from genrefy_tagger.report import Row

        path = os.fsdecode(item.path)
        current = tuple(current_genres(item))
        self._rows.append(
            Row(path, action, reason, current, identity=file_identity(path), **details)
        )

    def close(self) -> None:
        """Shut the worker processes down (end of a command or of an import)."""
        if self._pool is not None:
            self._pool.close()
            if self._pool.cache is not None:
                self._pool.cache.close()
        self._pool, self._pool_key = None, None

    def _get_pool(self, run: Run) -> CachedPool:
        from genrefy_tagger.cache import CachedPool, open_cache

        key = (run.model, run.min_confidence, run.jobs)
        if self._pool is None or self._pool_key != key:
            self.close()
            # The cache genrefy-tag fills: an item it analysed is not listened to again.
            cache = open_cache(None) if self.config["cache"].get(bool) else None
            self._pool = CachedPool(
                run.model, cache=cache, min_confidence=run.min_confidence, jobs=run.jobs
            )
            self._pool_key = key
        return self._pool

    def _threshold(self, run: Run) -> float:
        if run.min_confidence is not None:
            return run.min_confidence
        return self._get_pool(run).bundle.min_confidence

    def _analyse(self, items: Iterable[Item], run: Run) -> Iterator[tuple[Item, Analysis]]:
        """(item, analysis) in input order; at most 2 × jobs files in flight."""
        pending: deque[tuple[Item, Future[Analysis]]] = deque()
        pool: CachedPool | None = None
        for item in items:
            pool = pool or self._get_pool(run)  # no model load when nothing needs one
            pending.append((item, pool.submit(os.fsdecode(item.path))))
            while len(pending) > 2 * pool.jobs or (pending and pending[0][1].done()):
                yield pending[0][0], pending.popleft()[1].result()
        while pending:
            yield pending[0][0], pending.popleft()[1].result()

    def _usable(self, item: Item, run: Run, counts: Counter[str]) -> bool:
        """Whether an item should be analysed; logs why not."""
        if not item.path:
            self._log.warning("{}: has no file path; skipped", _item_label(item))
            counts["failed"] += 1
            return False
        if current_genres(item) and not run.force:
            self._log.debug("{}: keeps {}", _item_label(item), _show(current_genres(item)))
            counts["kept their genres (-f replaces)"] += 1
            self._add_row(item, "unchanged", "has a genre (use -f)")
            return False
        return True

    def _unsure_reason(self, analysis: Analysis, run: Run) -> str:
        if analysis.decision is None:
            return analysis.note or "no decision"
        d = analysis.decision
        top = ", ".join(f"{self._name(g, run)} {s:.2f}" for g, s in d.ranked[:2])
        return f"confidence {d.confidence:.2f} < {self._threshold(run):.2f}; {top}"

    def _row_details(self, analysis: Analysis, run: Run) -> dict[str, Any]:
        d = analysis.decision
        if d is None:
            return {}
        return {
            "proposed": tuple(self._name(g, run) for g in d.top(run.count)),
            "confidence": d.confidence,
            "agreement": d.agreement,
            "runners_up": tuple((self._name(g, run), s) for g, s in d.ranked[1:3]),
        }

    # ------------------------------------------------------------------ tagging

    def _assign(self, obj: LibModel, names: list[str], decision: Decision, run: Run) -> None:
        if _own(obj, "genrefy_previous") is None:  # keep the genres from before the first run
            obj["genrefy_previous"] = json.dumps(current_genres(obj))
        _set_genres(obj, names)
        obj["genrefy_genre"] = decision.genre
        obj["genrefy_confidence"] = float(decision.confidence)
        obj["genrefy_model"] = self._get_pool(run).bundle.tag

    def tag_items(self, items: Iterable[Item], run: Run, counts: Counter[str]) -> list[Item]:
        """Classify and tag items one by one; returns the items changed."""
        changed = []
        todo = (item for item in items if self._usable(item, run, counts))
        for item, analysis in self._analyse(todo, run):
            label = _item_label(item)
            if analysis.error:
                path = displayable_path(item.path)
                self._log.warning("{}: cannot analyse {}: {}", label, path, analysis.error)
                counts["failed"] += 1
                self._add_row(item, "failed", analysis.error)
            elif analysis.unsure:
                self._report(run, f"{label}: unsure ({self._unsure_reason(analysis, run)})")
                counts["unsure"] += 1
                reason = analysis.note or "below min_confidence"
                self._add_row(item, "unsure", reason, **self._row_details(analysis, run))
            else:
                d = analysis.decision
                assert d is not None
                names = [self._name(g, run) for g in d.top(run.count)]
                self._add_row(item, "tag", **self._row_details(analysis, run))
                old = _show(current_genres(item))
                self._report(
                    run,
                    f"{label}: {old} → {_show(names)} "
                    f"(confidence {d.confidence:.2f}, agreement {d.agreement:.2f})",
                )
                counts["to tag" if run.pretend else "tagged"] += 1
                if not run.pretend:
                    self._assign(item, names, d, run)
                    item.try_sync(write=run.write, move=False)
                    changed.append(item)
        return changed

    def tag_album(
        self, album: Album, run: Run, counts: Counter[str], items: list[Item] | None = None
    ) -> list[Item]:
        """One genre for the whole album from a vote of its tracks; returns the items changed."""
        from genrefy_tagger.vote import album_vote

        items = list(album.items()) if items is None else items
        label = _album_label(album)
        if not run.force and (current_genres(album) or any(current_genres(i) for i in items)):
            self._log.debug("{}: has genres; kept", label)
            counts["kept their genres (-f replaces)"] += 1
            return []
        track_lines, decisions, names = [], [], []
        for item in items:
            if not item.path:
                self._log.warning("{}: has no file path; no vote", _item_label(item))
        for item, analysis in self._analyse([i for i in items if i.path], run):
            if analysis.error:
                self._log.warning("{}: cannot analyse: {}", _item_label(item), analysis.error)
                track_lines.append(f"  {_item_label(item)}: cannot analyse: {analysis.error}")
            elif analysis.decision is None:
                track_lines.append(f"  {_item_label(item)}: no vote ({analysis.note})")
            else:
                d = analysis.decision
                decisions.append(d)
                track_lines.append(
                    f"  {_item_label(item)}: {self._name(d.genre, run)} "
                    f"(confidence {d.confidence:.2f}, agreement {d.agreement:.2f})"
                )
        threshold = self._threshold(run) if decisions else 0.0
        decision, shares, tie = album_vote(decisions, min_confidence=threshold)
        votes = ", ".join(f"{self._name(g, run)} {s:.2f}" for g, s in shares.items())
        if decision is None:
            head = f"{label}: unsure (no track could be judged)"
        elif tie:
            tied = [
                self._name(g, run) for g, s in shares.items() if abs(s - decision.confidence) < 1e-9
            ]
            head = f"{label}: unsure, tie between {' and '.join(tied)} (votes: {votes})"
        elif decision.unsure:
            head = f"{label}: unsure (vote share {decision.confidence:.2f} < {threshold:.2f})"
        else:
            names = [self._name(g, run) for g in decision.top(run.count)]
            old = current_genres(album) or list(
                dict.fromkeys(g for item in items for g in current_genres(item))
            )
            head = (
                f"{label}: {_show(old)} → {_show(names)} "
                f"(vote share {decision.confidence:.2f}, agreement {decision.agreement:.2f}, "
                f"{len(decisions)} of {len(items)} tracks voted)"
            )
        if decision is not None and decision.agreement < LOW_AGREEMENT:
            head += f"; low agreement: {decision.agreement:.0%} of voting tracks"
        self._report(run, head)
        self._report(run, f"  votes: {votes or '(none)'}")
        for line in track_lines:
            self._report(run, line, level="debug")
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
            item.try_sync(write=run.write, move=False)
        return items

    def undo(self, obj: LibModel, run: Run) -> int:
        """Restore the genres from before genrefy and drop its attributes; returns items done."""
        restored = 0
        targets: list[LibModel] = [obj, *obj.items()] if isinstance(obj, Album) else [obj]
        for target in targets:
            previous = _own(target, "genrefy_previous")
            if previous is None:
                continue
            old = json.loads(previous)
            label = _item_label(target) if isinstance(target, Item) else _album_label(target)
            self._report(run, f"{label}: {_show(current_genres(target))} → {_show(old)} (undo)")
            restored += isinstance(target, Item)
            if run.pretend:
                continue
            _set_genres(target, old)
            for key in OWN_FIELDS:
                if _own(target, key) is not None:
                    del target[key]
            if isinstance(target, Album):
                target.store(inherit=False)
            else:
                target.try_sync(write=run.write, move=False)
        return restored

    # ------------------------------------------------------------------- import

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage: fill empty genres; never lets an error stop the import."""
        try:
            run = self.settings()  # beets writes after this stage (or write_imported does)
            counts: Counter[str] = Counter()
            items = task.imported_items()
            if run.album and task.is_album and getattr(task, "album", None) is not None:
                changed = self.tag_album(task.album, run, counts, items=items)
            else:
                changed = self.tag_items(items, run, counts)
            if session.config["write"].get(bool) and not _beets_writes(task):
                self._unwritten.update(item.id for item in changed)
        except Exception as exc:  # noqa: BLE001 - the import must go on
            self._log.error("skipped {}: {}", displayable_path(task.paths), exc)
            self._log.debug("{}", traceback.format_exc())
            self.close()  # e.g. a dead worker: the next task starts a fresh pool

    def write_imported(self, session: ImportSession, task: ImportTask) -> None:
        """Write the genres of as-is imports once the files are at their final paths."""
        try:
            for item in task.imported_items():
                if item.id in self._unwritten:
                    self._unwritten.discard(item.id)
                    item.try_sync(write=True, move=False)
        except Exception as exc:  # noqa: BLE001 - the import must go on
            self._log.error("could not write genres for {}: {}", displayable_path(task.paths), exc)
