"""What ``genrefy-tag --apply``, ``--clear-cache`` and ``--report`` need beyond option parsing."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..listening.model import Bundle

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


def report_meta(paths: tuple[Path, ...], base: Path | None, options: Any) -> dict[str, Any]:
    """The run, as a report records it: the folder given, the model and its settings."""
    from ..listening.model import load_bundle

    bundle = load_bundle(options.model)
    if base is None:
        base = common_folder(paths)
    threshold = options.min_confidence
    return run_meta(
        base,
        bundle,
        bundle.min_confidence if threshold is None else threshold,
        top_k=options.top_k,
        overwrite=options.overwrite,
        dry_run=options.dry_run,
    )


def check_extras(report: Path | None, ray_address: str | None, ship_audio: bool) -> None:
    """Usage errors for what needs the optional extra ``genrefy[ray]`` (found, not imported)."""
    from importlib.util import find_spec

    if ship_audio and not ray_address:
        raise click.UsageError("--ship-audio goes with --ray")
    needed = []
    if ray_address and find_spec("ray") is None:
        needed.append(("--ray", "ray"))
    if report is not None and report.suffix.lower() == ".parquet" and find_spec("pyarrow") is None:
        needed.append(("--report", "pyarrow"))
    for option, module in needed:
        raise click.BadParameter(
            f"needs {module}, which is not installed: pip install 'genrefy[ray]'",
            param_hint=option,
        )


def open_report(path: Path, meta: dict[str, Any]) -> Any:
    """The report writer for ``path``'s kind (Parquet needs the optional pyarrow)."""
    if path.suffix.lower() == ".parquet":
        from ..reporting.parquet_report import ParquetReport

        return ParquetReport(path, meta)  # raises ReportError, like ReportWriter
    from ..reporting.report import ReportWriter

    return ReportWriter(path, meta)


def close_report(writer: Any, interrupted: bool) -> None:
    if hasattr(writer, "parts"):  # Parquet: an interrupted run keeps its checkpoint
        writer.close(complete=not interrupted)
    else:
        writer.close()


def common_folder(paths: Iterable[str | os.PathLike]) -> Path:
    """The deepest folder holding every one of ``paths`` (files or folders)."""
    folders = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p)) for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def run_meta(
    root: Path,
    bundle: Bundle,
    min_confidence: float,
    *,
    top_k: int,
    overwrite: bool,
    dry_run: bool,
    name: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """What a report records about its run (``genrefy-tag`` and ``beet genrefy`` alike)."""
    from ..reading.config import display_name

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "root": str(root),
        "model": bundle.tag,
        "min_confidence": min_confidence,
        "top_k": top_k,
        "overwrite": overwrite,
        "dry_run": dry_run,
        "genres": [(name or display_name)(g) for g in bundle.genres],
    }


def apply(
    plan_path: Path,
    folder: Path | None,
    journal_path: Path | None,
    dry_run: bool,
    keep_mtime: bool,
    hard_links: str = "skip",
) -> int:
    """``--apply``: check the whole plan, then write its ``tag`` rows; returns the exit status."""
    from ..fsnames import shown
    from ..reporting.report import format_row
    from ..running.cache import open_cache
    from ..running.plan import PlanError, apply_plan, read_plan
    from ..writing.journal import Journal, JournalError, default_journal_path

    try:
        plan = read_plan(plan_path, folder)
    except PlanError as exc:
        message = f"error: {exc}\nnothing written: correct the plan and apply it again"
        click.echo(shown(message), err=True)
        return EXIT_USAGE
    start = time.perf_counter()
    counts: Counter[str] = Counter()
    try:
        journal = None if dry_run else Journal(journal_path or default_journal_path())
    except JournalError as exc:
        click.echo(shown(f"error: {exc}"), err=True)
        return EXIT_USAGE
    # Not for lookups (nothing is analysed): writes re-key the analyses they keep valid.
    cache = None if dry_run else open_cache(None)
    try:
        rows = apply_plan(
            plan,
            journal,
            dry_run=dry_run,
            keep_mtime=keep_mtime,
            cache=cache,
            hard_links=hard_links,
        )
        for row in rows:
            counts[row.action] += 1
            click.echo(format_row(row, dry_run=dry_run, base=plan.root))
    finally:
        if journal is not None:
            journal.close()
        if cache is not None:
            cache.close()
    left = len(plan.rows) - len(plan.to_write)
    verb = "would tag" if dry_run else "tagged"
    click.echo(
        f"{len(plan.rows)} rows: {counts['tag']} {verb}, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} skipped, {left} left alone, "
        f"{counts['failed']} failed — {time.perf_counter() - start:.1f} s"
    )
    if journal is not None and counts["tag"]:
        click.echo(shown(f"journal: {journal.path}  (undo: genrefy-tag --undo {journal.path})"))
    return EXIT_FAILURES if counts["failed"] else EXIT_OK


def clear_cache() -> None:
    from ..running.cache import default_cache_path, open_cache

    cache = open_cache(default_cache_path())
    if cache is None:
        return
    with cache:
        removed = cache.clear()
    click.echo(f"cache: removed {removed} stored analyses ({cache.path})")
