"""Audio-based genres inside beets: ``beet genrefy`` and, optionally, on import.

The plugin reads its config and options and hooks into beets; the work (which items
to ask about, storing the answers through beets) is
:class:`genrefy_tagger.cli.library_tagging.LibraryTagger`, and all listening is done by
:mod:`genrefy_tagger.listening.engine`, which loads on first use, so beets' start-up and
``beet --help`` stay light and never touch TensorFlow.
"""

from __future__ import annotations

import traceback
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin
from beets.util import displayable_path

from genrefy_tagger.cli.library_tagging import LibraryTagger, Run

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Library


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
                "hard_links": "skip",
            }
        )
        # One analysis pool (one model load per worker) serves a whole command or import.
        self.tagger = LibraryTagger(self._log)
        # Items changed during an as-is import, written once their files are in place.
        self._unwritten: set[int] = set()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.write_imported)
        self.register_listener("import", self.close)
        self.register_listener("cli_exit", self.close)

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
            "cache": self.config["cache"].get(bool),
            "hard_links": self.config["hard_links"].as_choice(["skip", "in-place", "break"]),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["min_confidence"] is not None and not 0.0 <= values["min_confidence"] <= 1.0:
            raise ui.UserError("genrefy: min_confidence must be between 0 and 1")
        return Run(**values)

    def close(self) -> None:
        """Shut the worker processes down (end of a command or of an import)."""
        self.tagger.close()

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
        add("-q", "--quiet", action="store_true", help="no progress bar")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts: Any, args: list[str]) -> None:
        from genrefy_tagger.listening.model import BundleError
        from genrefy_tagger.reporting.report import ReportError

        run = self.settings(
            force=opts.force,
            album=opts.album,
            min_confidence=opts.min_confidence,
            pretend=opts.pretend,
            write=ui.should_write() and not opts.pretend,
            progress=not opts.quiet,  # on a terminal only; an import keeps beets' own display
        )
        counts: Counter[str] = Counter()
        report = opts.report
        if report and (run.album or opts.undo):
            raise ui.UserError("genrefy: --report works per track, not with -a or --undo")
        if report and not report.lower().endswith((".json", ".csv", ".html")):
            raise ui.UserError("genrefy: --report must end in .json, .csv or .html")
        tagger = self.tagger
        tagger.rows = [] if report else None
        try:
            objs = list(lib.albums(args) if run.album else lib.items(args))
            if not objs:
                self._log.info("no {} match the query", "albums" if run.album else "items")
            elif opts.undo:
                restored = sum(tagger.undo(obj, run) for obj in objs)
                counts["to restore" if run.pretend else "restored"] = restored
            elif run.album:
                for album in objs:
                    tagger.tag_album(album, run, counts)
            else:
                tagger.tag_items(objs, run, counts)  # one stream: all workers stay busy
            if report and objs:
                tagger.write_report(report, objs, run)
        except (BundleError, ReportError) as exc:
            raise ui.UserError(f"genrefy: {exc}") from exc
        finally:
            self.close()
            tagger.rows = None
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
        prefix = "pretend, nothing changed" if run.pretend else "done"
        tagger.say(run, f"{prefix}: {summary or 'nothing to do'}")

    # ------------------------------------------------------------------- import

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage: fill empty genres; never lets an error stop the import."""
        try:
            run = self.settings()  # beets writes after this stage (or write_imported does)
            counts: Counter[str] = Counter()
            items = task.imported_items()
            if run.album and task.is_album and getattr(task, "album", None) is not None:
                changed = self.tagger.tag_album(task.album, run, counts, items=items)
            else:
                changed = self.tagger.tag_items(items, run, counts)
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
