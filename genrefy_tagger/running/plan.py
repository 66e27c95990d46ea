"""Plans: a report (``.json`` or ``.csv``) read back, checked, and written with ``--apply``.

A plan is what ``--report`` writes, possibly edited by hand or by the review page.
Every row records the file it was decided on: ``size``, ``mtime`` (seconds, a float
that survives JavaScript) and ``fingerprint`` — SHA-256 over the size and the first
and last 64 KiB, where every supported format keeps its tags (ID3v2, Vorbis
comments and MP4 ``moov`` at the start or end, ID3v1 and APEv2 at the end). A file
whose size, mtime or fingerprint differ is skipped: it changed since the decision.

Only rows whose ``action`` is ``tag`` are written; ``skip`` (the review page's
"skip"), ``unchanged``, ``unsure``, ``failed`` and rows removed from the plan are
left alone. A row marked ``edited`` (a genre a person chose) is written without
genrefy's provenance field, so later runs treat it as someone else's genre.

The whole plan is checked before anything is written: unknown columns, genres that
are not strings, unknown actions, missing file records, paths outside the plan's
folder and duplicate paths are all errors (:class:`PlanError`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fsnames import LOSSLESS, is_utf8
from ..reporting.report import Row
from ..writing.journal import Journal
from ..writing.safe_write import LeftAlone
from ..writing.tags import (
    TagError,
    TagState,
    format_provenance,
    left_alone_reason,
    read_tags,
    write_genres,
)

if TYPE_CHECKING:
    from .cache import AnalysisCache

FINGERPRINT_BYTES = 64 * 1024
PLAN_FORMAT = "genrefy-plan"
PLAN_VERSION = 1
#: Every column a plan row may have; anything else is an error (a typo must not go unnoticed).
COLUMNS = frozenset(
    {"path", "action", "current", "proposed", "confidence", "agreement", "runners_up"}
    | {"reason", "size", "mtime", "fingerprint", "model", "edited"}
)
ACTIONS = frozenset({"tag", "skip", "unchanged", "unsure", "skipped", "failed"})
#: mtime is stored as float seconds; a double near 2e9 s resolves ~0.2 µs.
MTIME_TOLERANCE = 2e-6


class PlanError(ValueError):
    """A plan that cannot be applied as a whole; nothing has been written."""


# --- what a decision was made on ------------------------------------------------------------


def fingerprint(path: str | os.PathLike, size: int | None = None) -> str:
    """``sha256:…`` of the size and the first and last 64 KiB of the file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size if size is None else size
        digest = hashlib.sha256(str(size).encode() + b"\0")
        digest.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(f.read(FINGERPRINT_BYTES))
    return "sha256:" + digest.hexdigest()


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """``{"size", "mtime", "fingerprint"}`` of the file as it is now; {} if unreadable."""
    try:
        st = os.stat(path)
        return {
            "size": st.st_size,
            "mtime": st.st_mtime_ns / 1e9,
            "fingerprint": fingerprint(path, st.st_size),
        }
    except OSError:
        return {}


def changed_since(path: Path, row: PlanRow) -> str | None:
    """Why the file is no longer what the row was decided on, or None when it is the same."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "file no longer exists"
    except OSError as exc:
        return f"cannot read file: {exc.strerror}"
    if st.st_size != row.size:
        return f"changed since the plan was made (size {row.size} → {st.st_size})"
    if abs(st.st_mtime_ns / 1e9 - row.mtime) > MTIME_TOLERANCE:
        return "changed since the plan was made (modification time)"
    try:
        if fingerprint(path, st.st_size) != row.fingerprint:
            return "changed since the plan was made (content)"
    except OSError as exc:
        return f"cannot read file: {exc.strerror}"
    return None


# --- reading and checking -------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    path: Path
    action: str
    proposed: tuple[str, ...]
    confidence: float | None
    size: int | None
    mtime: float | None
    fingerprint: str | None
    edited: bool


@dataclass(frozen=True)
class Plan:
    path: Path
    root: Path
    model: str
    rows: tuple[PlanRow, ...]

    @property
    def to_write(self) -> list[PlanRow]:
        return [r for r in self.rows if r.action == "tag"]


def read_plan(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Plan:
    """Read and check a whole plan; raise :class:`PlanError` listing what is wrong.

    ``root`` is the plan's folder: every row must lie inside it. Default: the
    ``root`` recorded in a JSON plan, else the folder holding the plan file.
    """
    path = Path(path)
    try:
        # A CSV plan holds a name that is not UTF-8 as its bytes (see fsnames).
        text = path.read_text(encoding="utf-8-sig", errors=LOSSLESS)
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from exc
    meta: dict[str, Any] = {}
    if path.suffix.lower() == ".csv":
        raw_rows = _csv_rows(text)
    elif path.suffix.lower() == ".json":
        meta, raw_rows = _json_rows(text)
    else:
        raise PlanError(f"a plan is a .json or .csv report, not {path.name!r}")
    if root is None:
        root = meta.get("root") or path.resolve().parent
    base = Path(os.path.abspath(Path(root).expanduser()))
    problems: list[str] = []
    rows: list[PlanRow] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_rows, start=1):
        try:
            row = _check_row(raw, base)
        except PlanError as exc:
            problems.append(f"row {number}: {exc}")
            continue
        key = os.path.normcase(os.path.realpath(row.path))
        if key in seen:
            problems.append(f"row {number}: duplicate of row {seen[key]} ({row.path})")
            continue
        seen[key] = number
        rows.append(row)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PlanError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    model = meta.get("model") or next((str(r["model"]) for r in raw_rows if r.get("model")), "")
    return Plan(path, base, str(model), tuple(rows))


def _json_rows(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"not valid JSON: {exc}") from exc
    if isinstance(data, list):
        meta, rows = {}, data
    elif isinstance(data, dict) and isinstance(data.get("rows"), list):
        meta, rows = data, data["rows"]
        if meta.get("format", PLAN_FORMAT) != PLAN_FORMAT:
            raise PlanError(f"not a genrefy plan (format {meta.get('format')!r})")
        if meta.get("root") is not None and not isinstance(meta["root"], str):
            raise PlanError("'root' must be a string")
    else:
        raise PlanError('expected a genrefy report: {"rows": [...]} or a list of rows')
    if not all(isinstance(r, dict) for r in rows):
        raise PlanError("every row must be a JSON object")
    return meta, rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    unknown = sorted(set(reader.fieldnames or ()) - COLUMNS)
    if unknown:
        raise PlanError(f"unknown column(s) {unknown}; known: {sorted(COLUMNS)}")
    rows: list[dict[str, Any]] = []
    for raw in reader:
        if None in raw:
            raise PlanError(f"row {len(rows) + 1}: more cells than columns")
        row: dict[str, Any] = {k: v for k, v in raw.items() if v not in ("", None)}
        if "proposed" in raw:  # an emptied cell means "no genre"
            row["proposed"] = [g.strip() for g in (raw["proposed"] or "").split(";") if g.strip()]
        for key, kind in (("size", int), ("mtime", float), ("confidence", float)):
            if key in row:
                try:
                    row[key] = kind(row[key])
                except ValueError as exc:
                    raise PlanError(f"row {len(rows) + 1}: {key}: {exc}") from exc
        if "edited" in row:
            row["edited"] = row["edited"].strip().lower() in ("1", "true", "yes")
        rows.append(row)
    return rows


def _check_row(raw: dict[str, Any], base: Path) -> PlanRow:
    unknown = sorted(set(raw) - COLUMNS)
    if unknown:
        raise PlanError(f"unknown column(s) {unknown}")
    name, action = raw.get("path"), raw.get("action")
    if not isinstance(name, str) or not name.strip():
        raise PlanError("'path' must be a non-empty string")
    if action not in ACTIONS:
        raise PlanError(f"'action' must be one of {sorted(ACTIONS)}, not {action!r}")
    path = Path(os.path.abspath(base / Path(name).expanduser()))
    real = Path(os.path.realpath(path))
    if not _inside(path, base) or not _inside(real, Path(os.path.realpath(base))):
        raise PlanError(f"{name} is outside the plan's folder {base}")
    proposed = raw.get("proposed", [])
    if not isinstance(proposed, list) or not all(isinstance(g, str) for g in proposed):
        raise PlanError(f"'proposed' must be a list of strings, not {proposed!r}")
    proposed = [g.strip() for g in proposed]
    if any(not g or "\0" in g or not is_utf8(g) for g in proposed):
        raise PlanError(f"'proposed' holds an empty or invalid genre: {proposed!r}")
    confidence = raw.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float))
    ):
        raise PlanError(f"'confidence' must be a number or null, not {confidence!r}")
    edited = raw.get("edited", False)
    if not isinstance(edited, bool):
        raise PlanError(f"'edited' must be true or false, not {edited!r}")
    size, mtime, digest = raw.get("size"), raw.get("mtime"), raw.get("fingerprint")
    if action == "tag":
        if not proposed:
            raise PlanError("action 'tag' needs at least one proposed genre")
        if not (
            isinstance(size, int)
            and not isinstance(size, bool)
            and isinstance(mtime, (int, float))
            and isinstance(digest, str)
        ):
            raise PlanError("action 'tag' needs the file's size, mtime and fingerprint")
    return PlanRow(
        path=path,
        action=action,
        proposed=tuple(proposed),
        confidence=None if confidence is None else float(confidence),
        size=size if isinstance(size, int) else None,
        mtime=float(mtime) if isinstance(mtime, (int, float)) else None,
        fingerprint=digest if isinstance(digest, str) else None,
        edited=edited,
    )


def _inside(path: Path, base: Path) -> bool:
    try:
        path.relative_to(base)
    except ValueError:
        return False
    return path != base


# --- applying -------------------------------------------------------------------------------


def apply_plan(
    plan: Plan,
    journal: Journal | None,
    *,
    dry_run: bool = False,
    keep_mtime: bool = False,
    cache: AnalysisCache | None = None,
    hard_links: str = "skip",
) -> Iterator[Row]:
    """Write the plan's ``tag`` rows, in order, one verified atomic write each.

    Yields one :class:`Row` per written-or-considered file: ``tag`` (written, or
    would be in a dry run), ``unchanged`` (already holds these genres), ``skipped``
    (changed since the plan, or left alone on purpose: read-only, hard links under
    ``hard_links="skip"``, no room for a tag) or ``failed``. ``cache``: re-keyed after
    each write, since only tags changed (the write verified the audio), so stored
    analyses stay valid.
    """
    for row in plan.to_write:
        problem = changed_since(row.path, row)
        if problem:
            yield Row(row.path, "skipped", problem, proposed=row.proposed)
            continue
        try:
            state = read_tags(row.path)
        except TagError as exc:
            yield Row(row.path, "failed", str(exc), proposed=row.proposed)
            continue
        # The model's confidence belongs to its own proposal, not to a person's edit.
        confidence = None if row.edited else row.confidence
        details = {"current": state.genres, "proposed": row.proposed, "confidence": confidence}
        reason = "edited in review" if row.edited else ""
        if state.genres == row.proposed:
            yield Row(row.path, "unchanged", "already has this genre", **details)
            continue
        if dry_run:
            skip = left_alone_reason(row.path, row.proposed, hard_links)
            action = "skipped" if skip else "tag"
            yield Row(row.path, action, skip or reason, **details)
            continue
        new = TagState(row.proposed, _provenance(plan, row))
        model = plan.model or "plan"
        record = None if journal is None else journal.recorder(row.path, state, new, model=model)
        try:
            before = os.stat(row.path)
            write_genres(
                row.path,
                new.genres,
                provenance=new.provenance,
                keep_mtime=keep_mtime,
                hard_links=hard_links,
                before_replace=record,
            )
        except LeftAlone as exc:  # read-only, hard links, no room for a tag: on purpose
            yield Row(row.path, "skipped", str(exc), **details)
            continue
        except (OSError, TagError) as exc:
            yield Row(row.path, "failed", str(exc), **details)
            continue
        if cache is not None:
            cache.renew(row.path, before)
        yield Row(row.path, "tag", reason, **details)


def _provenance(plan: Plan, row: PlanRow) -> str | None:
    # A person's choice is not the model's: no provenance, so later runs leave it be.
    if row.edited or not plan.model or row.confidence is None:
        return None
    return format_provenance(plan.model, row.confidence, row.proposed)
