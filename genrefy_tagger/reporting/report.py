"""What happened to each file, for people (a table) and for programs (JSON, CSV).

A path that is not valid UTF-8 is shown with ``\\xNN`` escapes and kept exactly in the
JSON and CSV reports (:mod:`genrefy_tagger.fsnames`).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..fsnames import LOSSLESS, json_text, shown, shown_name
from ..isolation import describe

#: Every row falls in exactly one of these; the summary counts them.
CATEGORIES = ("tagged", "unchanged", "unsure", "skipped", "failed")

#: The reason of a file left alone because this model already analysed it (+ the model,
#: and the options of this run it did not get, see ``tagger._policy_changes``).
ALREADY_ANALYSED = "already analysed by "
_FORCE_HINT = re.compile(re.escape(ALREADY_ANALYSED) + r"(\S+); use --force to apply (.+)$")

CSV_FIELDS = (
    "path",
    "action",
    "current",
    "proposed",
    "confidence",
    "agreement",
    "runners_up",
    "reason",
    "size",
    "mtime",
    "fingerprint",
    "model",
)
#: Report kinds, by file extension.
REPORT_KINDS = (".json", ".csv", ".html")


@dataclass(frozen=True)
class Row:
    """One file's outcome.

    ``action`` is one of: ``tag`` (written, or would be in a dry run),
    ``unchanged``, ``unsure`` (nothing written: the model is not confident or the
    audio gives nothing to judge), ``skipped`` (left unchanged on purpose: read-only,
    hard links under ``--hard-links skip``, no room for a tag, or changed since a plan),
    ``failed``.
    """

    path: Path
    action: str
    reason: str = ""
    current: tuple[str, ...] = ()
    proposed: tuple[str, ...] = ()
    confidence: float | None = None
    agreement: float | None = None
    runners_up: tuple[tuple[str, float], ...] = ()
    # Every genre's score, best first (the Parquet report keeps the whole vector).
    scores: tuple[tuple[str, float], ...] = field(default=(), compare=False)
    # What the decision was made on (see plan.file_identity); {} when not recorded.
    identity: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def category(self) -> str:
        return "tagged" if self.action == "tag" else self.action

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": os.path.abspath(self.path),
            "action": self.action,
            "current": list(self.current),
            "proposed": list(self.proposed),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "agreement": None if self.agreement is None else round(self.agreement, 3),
            "runners_up": [[g, round(s, 4)] for g, s in self.runners_up],
            "reason": self.reason,
            "size": self.identity.get("size"),
            "mtime": self.identity.get("mtime"),
            "fingerprint": self.identity.get("fingerprint"),
        }


def format_row(row: Row, *, dry_run: bool, base: Path | None = None) -> str:
    """One readable line: ``action  conf  current → proposed  path  (reason)``."""
    label = {"tag": "would tag" if dry_run else "tagged"}.get(row.action, row.action)
    conf = f"{row.confidence:4.0%}" if row.confidence is not None else "   -"
    current = "; ".join(row.current) or "(none)"
    change = f"{current} → {'; '.join(row.proposed)}" if row.proposed else current
    where = shown_name(_relative(row.path, base))
    line = f"{label:<10} {conf}  {change:<32} {where}"
    return shown(f"{line}  ({row.reason})" if row.reason else line)


def _relative(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    #: reason → files a new policy did not reach because this model already analysed them
    not_reached: Counter = field(default_factory=Counter)

    def add(self, row: Row) -> None:
        self.counts[row.category] += 1
        if row.action == "unchanged" and _FORCE_HINT.match(row.reason):
            self.not_reached[row.reason] += 1

    def policy_hint(self) -> str | None:
        """One line for files left alone although this run's options would change them."""
        if not self.not_reached:
            return None
        n = sum(self.not_reached.values())
        models, options = set(), []
        for reason in self.not_reached:
            model, wanted = _FORCE_HINT.match(reason).groups()  # type: ignore[union-attr]
            models.add(model)
            options += [o for o in wanted.split(" and ") if o not in options]
        left = "was left alone" if n == 1 else "were left alone"
        return (
            f"{n} file{'s' if n != 1 else ''} already analysed by {', '.join(sorted(models))} "
            f"{left}; use --force to apply {' and '.join(options)}"
        )

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def format(self, *, dry_run: bool) -> str:
        tagged = "would tag" if dry_run else "tagged"
        # "skipped" only when it happened: most runs skip nothing on purpose.
        parts = [f"{self.counts['tagged']} {tagged}"] + [
            f"{self.counts[c]} {c}" for c in CATEGORIES[1:] if c != "skipped" or self.counts[c]
        ]
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{n_files(self.total)}: "
            + ", ".join(parts)
            + f" — {self.seconds:.1f} s ({rate:.1f} files/s)"
        )


def n_files(n: int) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} file{'' if n == 1 else 's'}"


class ReportError(Exception):
    """The report cannot be written (a full disk, a read-only folder); the message is one line."""


class ReportWriter:
    """Streams rows into a ``.json``, ``.csv`` or ``.html`` report; the format follows the
    extension.

    ``meta`` describes the run (``root``: the folder given, ``model``, ``min_confidence``,
    ``top_k``). JSON is one object, ``{"format": "genrefy-plan", …meta, "rows": [...]}``,
    which ``--apply`` reads back (see :mod:`genrefy_tagger.running.plan`); CSV repeats the model
    on every row; HTML is the review page (:mod:`genrefy_tagger.reporting.review`), built at close.

    Any OS error (creating, writing or closing) raises :class:`ReportError`, after which
    the writer is closed and a partly written report removed: a cut-off CSV would
    otherwise read as a valid, shorter plan.
    """

    def __init__(self, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = dict(meta or {})
        suffix = self.path.suffix.lower()
        if suffix not in REPORT_KINDS:
            raise ValueError(f"report must end in .json, .csv or .html, not {self.path.name!r}")
        self.kind = suffix[1:]
        self._rows: list[dict[str, Any]] = []
        self._count = 0
        self._fh: IO[str] | None = None
        self._closed = False
        try:
            self._open()
        except OSError as exc:
            self._fail(exc)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "html":
            # The page is rendered whole at close; find out now, not after the run, that
            # its folder cannot take it.
            fd, probe = tempfile.mkstemp(prefix=".genrefy-probe-", dir=self.path.parent)
            os.close(fd)
            os.unlink(probe)
            return
        # A path that is not UTF-8 is written as its bytes (the CSV is a plan), see fsnames.
        self._fh = open(self.path, "w", encoding="utf-8", errors=LOSSLESS, newline="")  # noqa: SIM115
        if self.kind == "csv":
            self._csv = csv.DictWriter(self._fh, fieldnames=CSV_FIELDS)
            self._csv.writeheader()
        else:
            head = {"format": "genrefy-plan", "version": 1, **self.meta}
            self._fh.write(json_text(head, indent=1)[:-2] + ',\n "rows": [\n')

    def write(self, row: Row) -> None:
        data = row.as_dict()
        try:
            if self.kind == "html":
                self._rows.append(data)
            elif self.kind == "csv":
                data["current"] = "; ".join(data["current"])
                data["proposed"] = "; ".join(data["proposed"])
                data["runners_up"] = "; ".join(f"{g} {s:.2f}" for g, s in data["runners_up"])
                data["model"] = self.meta.get("model", "")
                self._csv.writerow(data)
            else:
                sep = ",\n" if self._count else ""
                assert self._fh is not None
                self._fh.write(sep + "  " + json_text(data))
        except OSError as exc:
            self._fail(exc)
        self._count += 1

    def close(self) -> None:
        """Finish the report (a no-op once closed, or after a :class:`ReportError`)."""
        if self._closed:
            return
        try:
            if self.kind == "html":
                from .review import write_page

                write_page(self.path, self._rows, self.meta)
            else:
                assert self._fh is not None
                if self.kind == "json":
                    self._fh.write("\n ]\n}\n")
                self._fh.close()
        except OSError as exc:
            self._fail(exc)
        self._closed = True

    def _fail(self, exc: OSError) -> None:
        """Close, remove what was written, and raise the one-line ReportError."""
        self._closed = True
        if self._fh is not None:
            with contextlib.suppress(OSError):  # it flushes again, and may fail again
                self._fh.close()
            # Only a regular file this writer filled, never a device or a link's target.
            if self.path.is_file() and not self.path.is_symlink():
                self.path.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report {self.path}: {describe(exc)}") from exc

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
