"""The console side of ``genrefy-tag``: a library run and ``--undo``, as the user sees them.

:mod:`genrefy_tagger.cli` parses the options and calls, in this order:

1. :func:`check_arguments`: the usage errors (exit 2) found before anything is loaded;
2. :func:`tag_options`: the options as :class:`genrefy_tagger.running.tagger.Options`;
3. :func:`tag`: the run, which walks the paths first, then prints one line per file worth
   showing, a progress bar (N of M files, rate, time left) on stderr and the summary, and
   returns the exit status;

or :func:`undo` for ``--undo``. The audio stack and the model runtime are imported
inside the functions, so importing this module keeps ``--help`` instant.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tqdm import tqdm

    from ..isolation import ErrorLog
    from ..reporting.report import Row, Summary
    from ..running.tagger import Options
    from ..writing.journal import Journal

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# --- before a run -----------------------------------------------------------------------------


def check_arguments(paths: tuple[Path, ...], report: Path | None, model: str | None) -> None:
    """Usage errors (exit 2) that can be told before anything is loaded."""
    if not paths:
        raise click.UsageError("give at least one music file or folder (or --undo JOURNAL)")
    missing = [str(p) for p in paths if not p.expanduser().exists()]
    if missing:
        raise click.BadParameter(
            "no such file or folder: " + ", ".join(missing), param_hint="PATHS"
        )
    if report is not None and report.suffix.lower() not in (".json", ".csv", ".html", ".parquet"):
        raise click.BadParameter(
            "must end in .json, .csv, .html or .parquet", param_hint="--report"
        )
    if model is not None and not Path(model).expanduser().exists():
        from ..listening.model import bundled_models

        names = sorted(bundled_models())
        if model not in names:
            raise click.BadParameter(
                f"unknown model {model!r}: use one of {', '.join(names)}, "
                "or the folder of a model you trained",
                param_hint="--model",
            )


def tag_options(*, max_windows: int | None, all_windows: bool, **kw: Any) -> Options:
    """The run's :class:`~genrefy_tagger.running.tagger.Options`, with the default analysis cache;
    ``kw`` are its other fields."""
    from ..reading.windows import WindowPolicy
    from ..running.cache import default_cache_path
    from ..running.tagger import Options

    policy = None
    if all_windows:
        policy = WindowPolicy(max_windows=None)
    elif max_windows:
        policy = WindowPolicy(max_windows=max_windows)
    return Options(policy=policy, cache_path=default_cache_path(), **kw)


# --- a library run ----------------------------------------------------------------------------


def tag(
    paths: tuple[Path, ...],
    options: Options,
    report_path: Path | None,
    journal_path: Path | None,
    *,
    quiet: bool,
    verbose: bool,
) -> int:
    """Tag what ``paths`` hold as ``options`` say, on the console; returns the exit status.

    Shown per file: failures always; with ``quiet`` nothing else; otherwise changes and
    unsure tracks (every file with ``verbose`` or in a dry run). A failed file does not
    stop the run; Ctrl-C (exit 130) and a report that cannot be written (exit 3) stop it
    between two files; a model or cluster that fails stops it at once (exit 2).
    """
    from ..isolation import ErrorLog
    from ..listening.model import BundleError
    from ..reporting.report import ReportError, Summary
    from ..running.progress import progress_bar
    from ..running.tagger import ClusterError, find, run, to_analyse
    from ..writing.journal import JournalError

    # Everything that can stop a run is checked before the first file is analysed.
    try:
        journal_file, journal = _open_journal(journal_path, dry_run=options.dry_run)
    except JournalError as exc:
        return _error(str(exc))
    # Tracebacks of unexpected errors go beside the journal; the file appears only if needed.
    errors = ErrorLog(journal_file.with_suffix(".errors.log") if journal_file else None)
    base = paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None
    writer = None
    if report_path:
        try:
            writer, options = _open_report(report_path, paths, base, options)
        except ReportError as exc:
            return _error(str(exc))
    summary = Summary()
    start = time.perf_counter()
    found = find(paths, options)  # the walk first: the bar shows N of M and the time left
    bar = progress_bar(to_analyse(found, options), quiet=quiet)  # after a resume's skip is set
    interrupted = False
    stopped: str | None = None  # why the run ended before its last file
    rows = run(paths, options, journal, errors, found=found)
    try:
        _show_rows(rows, summary, bar, writer, options, base, quiet=quiet, verbose=verbose)
    except BundleError as exc:
        return _error(f"model: {exc}")
    except ClusterError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        interrupted = True
    except ReportError as exc:  # e.g. a full disk: stop between two files, as Ctrl-C does
        stopped = str(exc)
    finally:
        rows.close()  # stops the analysis; the last file handed out is finished
        bar.close()
        closing = _close(writer, journal, interrupted or stopped is not None)
        stopped = stopped or closing
    summary.seconds = time.perf_counter() - start
    return _finish(summary, options, journal, errors, writer, interrupted, stopped)


def _error(message: str) -> int:
    """Print ``message`` as an error; the exit status of a run that could not start."""
    from ..fsnames import shown

    click.echo(shown(f"error: {message}"), err=True)
    return EXIT_USAGE


def _open_journal(
    journal_path: Path | None, *, dry_run: bool
) -> tuple[Path | None, Journal | None]:
    """The journal's file (None if unknown) and the journal itself (None in a dry run).

    Raises :class:`~genrefy_tagger.writing.journal.JournalError` when a real run cannot keep
    one; a dry run writes no journal, so it goes on without a file.
    """
    from ..writing.journal import Journal, JournalError, default_journal_path

    try:
        journal_file = journal_path or default_journal_path()
    except JournalError:
        if not dry_run:
            raise
        return None, None
    return journal_file, None if dry_run else Journal(journal_file)


def _open_report(
    report_path: Path, paths: tuple[Path, ...], base: Path | None, options: Options
) -> tuple[Any, Options]:
    """The report writer, and ``options`` told to skip what a resumed Parquet report holds."""
    from .review_cli import open_report, report_meta

    writer = open_report(report_path, report_meta(paths, base, options))
    if getattr(writer, "resumed", 0):  # a Parquet checkpoint: skip what it holds
        from dataclasses import replace

        options = replace(options, skip=writer.done)
        click.echo(f"resuming: {writer.resumed} files already in {writer.parts}", err=True)
    return writer, options


def _show_rows(
    rows: Iterator[Row],
    summary: Summary,
    bar: tqdm,
    writer: Any,
    options: Options,
    base: Path | None,
    *,
    quiet: bool,
    verbose: bool,
) -> None:
    """Count, show and report each file's row as the run yields it."""
    from ..reporting.report import format_row

    for row in rows:
        summary.add(row)
        bar.update()
        show = row.action == "failed" or (
            not quiet and (verbose or options.dry_run or row.action in ("tag", "unsure", "skipped"))
        )
        if show:
            bar.write(format_row(row, dry_run=options.dry_run, base=base))
        if writer:
            writer.write(row)


def _close(writer: Any, journal: Journal | None, cut_short: bool) -> str | None:
    """Close the report and the journal; why the report could not be finished, if so."""
    from ..reporting.report import ReportError
    from .review_cli import close_report

    problem = None
    if writer:
        try:
            close_report(writer, cut_short)
        except ReportError as exc:
            problem = str(exc)
    if journal:
        journal.close()
    return problem


def _finish(
    summary: Summary,
    options: Options,
    journal: Journal | None,
    errors: ErrorLog,
    writer: Any,
    interrupted: bool,
    stopped: str | None,
) -> int:
    """Print how the run ended; its exit status."""
    from ..fsnames import shown

    if stopped:
        click.echo(shown(f"error: {stopped}"), err=True)
    for line in _closing_lines(summary, options, journal, errors, writer, interrupted, stopped):
        click.echo(shown(line))
    if stopped:
        return EXIT_STOPPED
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILURES if summary.counts["failed"] else EXIT_OK


def _closing_lines(
    summary: Summary,
    options: Options,
    journal: Journal | None,
    errors: ErrorLog,
    writer: Any,
    interrupted: bool,
    stopped: str | None,
) -> list[str]:
    """The summary, why the run ended early, hints, and where the journal and report are."""
    lines = [summary.format(dry_run=options.dry_run)]
    whole = "every file written is complete and journalled; the rest are untouched"
    if interrupted:
        lines.append(f"interrupted: {whole}")
    if stopped:
        done = "nothing written (dry run)" if options.dry_run else whole
        lines.append(f"stopped, no report: {done}")
    hint = summary.policy_hint()
    if hint:
        lines.append(hint)
    if errors.summary():
        lines.append(errors.summary())
    if journal and journal.recorded:
        lines.append(f"journal: {journal.path}  (undo: genrefy-tag --undo {journal.path})")
    if writer and not stopped:
        lines.append(f"report: {writer.path}")
    return lines


# --- --undo -----------------------------------------------------------------------------------


def undo(journal_path: Path, *, dry_run: bool, hard_links: str = "skip") -> int:
    """Put back the genres ``journal_path`` recorded, one line per file; the exit status."""
    from collections import Counter

    from ..fsnames import shown, shown_name
    from ..reporting.report import n_files
    from ..running.cache import open_cache
    from ..writing.journal import undo as restore

    counts: Counter[str] = Counter()
    # Not for lookups (nothing is analysed): restores re-key the analyses they keep valid.
    cache = None if dry_run else open_cache(None)
    try:
        for result in restore(journal_path, dry_run=dry_run, cache=cache, hard_links=hard_links):
            counts[result.action] += 1
            reason = f"  ({result.reason})" if result.reason else ""
            click.echo(shown(f"{result.action:<10} {shown_name(result.path)}{reason}"))
    except KeyboardInterrupt:  # the file being restored was finished first
        counts["interrupted"] = 1
    finally:
        if cache is not None:
            cache.close()
    restored = "would restore" if dry_run else "restored"
    seen = sum(counts.values()) - counts["interrupted"]
    click.echo(
        f"{n_files(seen)}: {counts['restored']} {restored}, "
        f"{counts['skipped']} skipped, {counts['failed']} failed"
        + (" — interrupted" if counts["interrupted"] else "")
    )
    if counts["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_FAILURES if counts["failed"] else EXIT_OK
