"""``genrefy-tag``: the command line. Thin: options in, :mod:`genrefy_tagger.tagger` does the work.

Only click is imported at module level, so ``--help`` stays instant; the audio
stack and the model runtime load when a command actually runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: Shipped models, for help and messages; ``genrefy_tagger.model.bundled_models`` is the truth
#: (importing it here would slow ``--help`` down).
MODEL_NAMES = "musicnn (default) or hybrid"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-n", "--dry-run", is_flag=True, help="Show what would change; change nothing, keep no journal."
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one row per file (genres, confidence, action, reason) to FILE: .json or "
    ".csv (a plan for --apply), .html (a review page to listen, correct and download the plan), "
    "or .parquet (with every genre's probability; an interrupted run resumes it).",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    metavar="X",
    help="Leave a track alone ('unsure') when the model is less confident than X (0 to 1).  "
    "[default: the model's own, 0.70 for musicnn]",
)
@click.option(
    "--top-k",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10),
    metavar="K",
    help="Write the K most likely genres, as a multi-value tag.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Also replace genres that someone else set. Without it, only tracks with no genre "
    "(or with genres genrefy wrote) change.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Analyse again tracks this model already tagged (bypassing the analysis cache), e.g. "
    "to apply a new --top-k.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Analyse N files at a time (with --ray: N workers).  [default: the number of CPU "
    "cores, or the cluster's]",
)
@click.option(
    "--model",
    metavar="NAME|PATH",
    help=f"Which model listens: {MODEL_NAMES}, or the folder of a model you trained.",
)
@click.option(
    "--windows",
    "max_windows",
    type=click.IntRange(1, 1000),
    metavar="N",
    help="Listen to N 3-second windows per track.  [default: the model's own, 6 or 10]",
)
@click.option(
    "--all-windows",
    is_flag=True,
    help="Listen to every 3-second window of each track (slow on long tracks).",
)
@click.option(
    "--keep-mtime",
    is_flag=True,
    help="Keep each file's modification time (by default it becomes now, so that sync "
    "tools and beets notice the change).",
)
@click.option("--no-recursive", is_flag=True, help="Do not look inside sub-folders.")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every change in FILE.  [default: a new file in "
    "~/.local/state/genrefy/journal/ or $GENREFY_STATE_DIR/journal/]",
)
@click.option(
    "--undo",
    "undo_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="JOURNAL",
    help="Put back the genres a run changed, as recorded in JOURNAL, and exit "
    "(with --dry-run: only show what would be put back).",
)
@click.option(
    "--apply",
    "apply_path",
    metavar="PLAN",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Write what the plan PLAN (a .json or .csv report) says, without analysing, and "
    "exit. A PATH given is the plan's folder (default: the one recorded in the plan).",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Analyse on a Ray cluster: 'auto' (the running one), 'local' (start one here) or "
    "its address. Tags are still written here, one file at a time.  [needs genrefy[ray]]",
)
@click.option(
    "--ship-audio",
    is_flag=True,
    help="With --ray: send each file's bytes to the workers (for workers that cannot see "
    "the files).",
)
@click.option("--clear-cache", is_flag=True, help="Forget every stored analysis first.")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the tracks left unchanged.")
@click.version_option(package_name="genrefy")
def main(
    paths: tuple[Path, ...],
    dry_run: bool,
    report: Path | None,
    min_confidence: float | None,
    top_k: int,
    overwrite: bool,
    force: bool,
    jobs: int | None,
    model: str | None,
    max_windows: int | None,
    all_windows: bool,
    keep_mtime: bool,
    no_recursive: bool,
    journal_path: Path | None,
    undo_path: Path | None,
    apply_path: Path | None,
    ray_address: str | None,
    ship_audio: bool,
    clear_cache: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Listen to the music in PATHS and write each track's genre into its tags.

    PATHS are music files or folders (searched recursively). Tracks that already
    have a genre are left alone unless --overwrite. The audio is never changed,
    and every change is recorded in a journal that --undo reverses.

    \b
    Examples:
      genrefy-tag --dry-run ~/Music    show what would change, change nothing
      genrefy-tag ~/Music              fill in the missing genres
      genrefy-tag --overwrite --top-k 2 Album/
                                       replace genres, keep the two best
      genrefy-tag --dry-run --report review.html ~/Music
                                       review in a browser, save a plan
      genrefy-tag --apply genrefy-plan.json
                                       write the reviewed plan
      genrefy-tag --undo JOURNAL       put back what a run changed (each run
                                       prints the path of its JOURNAL)

    Exit status: 0 all done, 1 some files failed, 2 usage error, 3 stopped because
    the report could not be written, 130 interrupted.
    """
    try:
        if undo_path is not None:
            sys.exit(_undo(undo_path, dry_run=dry_run))
        if apply_path is not None:
            if len(paths) > 1:
                raise click.UsageError("--apply takes at most one PATH: the plan's folder")
            from .review_cli import apply

            sys.exit(
                apply(apply_path, paths[0] if paths else None, journal_path, dry_run, keep_mtime)
            )
        if clear_cache:
            from .review_cli import clear_cache as clear

            clear()
            if not paths:
                sys.exit(EXIT_OK)
        _check_arguments(paths, report, model)
        from .review_cli import check_extras

        check_extras(report, ray_address, ship_audio)
        from .cache import default_cache_path

        options = _options(
            dry_run=dry_run,
            overwrite=overwrite,
            force=force,
            top_k=top_k,
            min_confidence=min_confidence,
            keep_mtime=keep_mtime,
            recursive=not no_recursive,
            jobs=jobs,
            model=model,
            max_windows=max_windows,
            all_windows=all_windows,
            cache_path=default_cache_path(),
            identify=report is not None,
            ray=ray_address,
            ship_audio=ship_audio,
        )
        sys.exit(_tag(paths, options, report, journal_path, quiet=quiet, verbose=verbose))
    except KeyboardInterrupt:  # before or after the run proper (e.g. while loading the model)
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _check_arguments(paths: tuple[Path, ...], report: Path | None, model: str | None) -> None:
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
        from .model import bundled_models

        names = sorted(bundled_models())
        if model not in names:
            raise click.BadParameter(
                f"unknown model {model!r}: use one of {', '.join(names)}, "
                "or the folder of a model you trained",
                param_hint="--model",
            )


def _options(*, max_windows: int | None, all_windows: bool, **kw):  # -> tagger.Options
    from .tagger import Options
    from .windows import WindowPolicy

    policy = None
    if all_windows:
        policy = WindowPolicy(max_windows=None)
    elif max_windows:
        policy = WindowPolicy(max_windows=max_windows)
    return Options(policy=policy, **kw)


def _error(message: str) -> int:
    from .fsnames import shown

    click.echo(shown(f"error: {message}"), err=True)
    return EXIT_USAGE


def _tag(paths, options, report_path, journal_path, *, quiet: bool, verbose: bool) -> int:
    from tqdm import tqdm

    from .fsnames import shown
    from .isolation import ErrorLog
    from .journal import Journal, JournalError, default_journal_path
    from .model import BundleError
    from .report import ReportError, Summary, format_row
    from .review_cli import close_report
    from .tagger import ClusterError, run

    # Everything that can stop a run is checked before the first file is analysed.
    journal_file, journal = None, None
    try:
        journal_file = journal_path or default_journal_path()
        journal = None if options.dry_run else Journal(journal_file)
    except JournalError as exc:
        if not options.dry_run:
            return _error(str(exc))
    # Tracebacks of unexpected errors go beside the journal; the file appears only if needed.
    errors = ErrorLog(journal_file.with_suffix(".errors.log") if journal_file else None)
    base = paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None
    writer = None
    if report_path:
        from .review_cli import open_report, report_meta

        try:
            writer = open_report(report_path, report_meta(paths, base, options))
        except ReportError as exc:
            return _error(str(exc))
        if getattr(writer, "resumed", 0):  # a Parquet checkpoint: skip what it holds
            from dataclasses import replace

            options = replace(options, skip=writer.done)
            click.echo(f"resuming: {writer.resumed} files already in {writer.parts}", err=True)
    summary = Summary()
    start = time.perf_counter()
    bar = tqdm(desc="analysing", unit="file", disable=quiet or None, leave=False, file=sys.stderr)
    interrupted = False
    stopped: str | None = None  # why the run ended before its last file
    rows = run(paths, options, journal, errors)  # after a resume's options.skip is set
    try:
        for row in rows:
            summary.add(row)
            bar.update()
            show = row.action == "failed" or (
                not quiet and (verbose or options.dry_run or row.action in ("tag", "unsure"))
            )
            if show:
                bar.write(format_row(row, dry_run=options.dry_run, base=base))
            if writer:
                writer.write(row)
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
        if writer:
            try:
                close_report(writer, interrupted or stopped is not None)
            except ReportError as exc:
                stopped = stopped or str(exc)
        if journal:
            journal.close()
    summary.seconds = time.perf_counter() - start
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
    summary, options, journal, errors, writer, interrupted: bool, stopped: str | None
) -> list[str]:
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


def _undo(journal_path: Path, *, dry_run: bool) -> int:
    from collections import Counter

    from .cache import open_cache
    from .fsnames import shown
    from .journal import undo

    counts: Counter[str] = Counter()
    # Not for lookups (nothing is analysed): restores re-key the analyses they keep valid.
    cache = None if dry_run else open_cache(None)
    try:
        for result in undo(journal_path, dry_run=dry_run, cache=cache):
            counts[result.action] += 1
            reason = f"  ({result.reason})" if result.reason else ""
            click.echo(shown(f"{result.action:<10} {result.path}{reason}"))
    except KeyboardInterrupt:  # the file being restored was finished first
        counts["interrupted"] = 1
    finally:
        if cache is not None:
            cache.close()
    restored = "would restore" if dry_run else "restored"
    click.echo(
        f"{sum(counts.values()) - counts['interrupted']} files: {counts['restored']} {restored}, "
        f"{counts['skipped']} skipped, {counts['failed']} failed"
        + (" — interrupted" if counts["interrupted"] else "")
    )
    if counts["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_FAILURES if counts["failed"] else EXIT_OK
