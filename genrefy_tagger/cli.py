"""``genrefy-tag``: the command line. Thin: options in, :mod:`genrefy_tagger.tagger` does the work.

Only click is imported at module level, so ``--help`` stays instant; the audio
stack and the model runtime load when a command actually runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-n", "--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one row per file to FILE: .json or .csv (a plan for --apply), or .html "
    "(a review page to listen, correct and download the plan).",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    help="Abstain (write nothing, report 'unsure') below this. Default: the model's own.",
)
@click.option(
    "--top-k",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10),
    help="Write the K best genres as a multi-value tag.",
)
@click.option("--overwrite", is_flag=True, help="Replace genres that are already set.")
@click.option(
    "--force",
    is_flag=True,
    help="Re-analyse files this model already tagged, bypassing the analysis cache.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    help="Parallel analysis processes.  [default: number of cores]",
)
@click.option(
    "--model",
    metavar="NAME|PATH",
    help="A shipped model by name (hybrid, musicnn) or a bundle folder.  [default: the best]",
)
@click.option(
    "--windows",
    "max_windows",
    type=click.IntRange(1, 1000),
    help="How many 3-s windows to analyse per track.  [default: the model's, 6-10]",
)
@click.option(
    "--all-windows",
    is_flag=True,
    help="Analyse every 3-s window of each track (slow on long tracks).",
)
@click.option("--keep-mtime", is_flag=True, help="Keep each file's modification time.")
@click.option("--no-recursive", is_flag=True, help="Do not descend into sub-folders.")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to record changes.  [default: ~/.local/state/genrefy/journal/]",
)
@click.option(
    "--undo",
    "undo_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Restore the genres recorded in JOURNAL and exit.",
)
@click.option(
    "--apply",
    "apply_path",
    metavar="PLAN",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Write what the plan PLAN (a .json or .csv report) says, without analysing, and "
    "exit. A PATH given is the plan's folder (default: the one recorded in the plan).",
)
@click.option("--clear-cache", is_flag=True, help="Forget every stored analysis first.")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Print every file, including unchanged.")
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
    clear_cache: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Listen to the music in PATH... and write each track's genre into its tags.

    \b
    Examples:
      genrefy-tag --dry-run ~/Music            see what would change
      genrefy-tag ~/Music                      fill in missing genres
      genrefy-tag --overwrite --top-k 2 album/ replace genres, keep two
      genrefy-tag --dry-run --report review.html ~/Music   review in a browser
      genrefy-tag --apply genrefy-plan.json    write the reviewed plan
      genrefy-tag --undo ~/.local/state/genrefy/journal/20261125-171500.jsonl
    """
    if undo_path is not None:
        sys.exit(_undo(undo_path, dry_run=dry_run))
    if apply_path is not None:
        if len(paths) > 1:
            raise click.UsageError("--apply takes at most one PATH: the plan's folder")
        from .review_cli import apply

        sys.exit(apply(apply_path, paths[0] if paths else None, journal_path, dry_run, keep_mtime))
    if clear_cache:
        from .review_cli import clear_cache as clear

        clear()
        if not paths:
            sys.exit(EXIT_OK)
    if not paths:
        raise click.UsageError("give at least one file or folder (or --undo JOURNAL)")
    if report is not None and report.suffix.lower() not in (".json", ".csv", ".html"):
        raise click.BadParameter("must end in .json, .csv or .html", param_hint="--report")

    from .cache import default_cache_path
    from .model import BundleError
    from .tagger import Options
    from .windows import WindowPolicy

    options = Options(
        dry_run=dry_run,
        overwrite=overwrite,
        force=force,
        top_k=top_k,
        min_confidence=min_confidence,
        keep_mtime=keep_mtime,
        recursive=not no_recursive,
        jobs=jobs,
        model=model,
        policy=WindowPolicy(max_windows=None)
        if all_windows
        else (WindowPolicy(max_windows=max_windows) if max_windows else None),
        cache_path=default_cache_path(),
        identify=report is not None,
    )
    try:
        sys.exit(_tag(paths, options, report, journal_path, quiet=quiet, verbose=verbose))
    except BundleError as exc:
        click.echo(f"error: model: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _tag(paths, options, report_path, journal_path, *, quiet: bool, verbose: bool) -> int:
    from tqdm import tqdm

    from .journal import Journal, default_journal_path
    from .report import ReportWriter, Summary, format_row
    from .tagger import run

    base = paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None
    summary = Summary()
    journal = None if options.dry_run else Journal(journal_path or default_journal_path())
    writer = None
    if report_path:
        from .review_cli import report_meta

        writer = ReportWriter(report_path, report_meta(paths, base, options))
    start = time.perf_counter()
    bar = tqdm(desc="analysing", unit="file", disable=quiet or None, leave=False, file=sys.stderr)
    try:
        for row in run(paths, options, journal):
            summary.add(row)
            bar.update()
            if writer:
                writer.write(row)
            show = row.action == "failed" or (
                not quiet and (verbose or options.dry_run or row.action in ("tag", "unsure"))
            )
            if show:
                bar.write(format_row(row, dry_run=options.dry_run, base=base))
    except KeyboardInterrupt:
        bar.write("interrupted: files already written are complete and journalled")
        return EXIT_FAILURES
    finally:
        bar.close()
        if writer:
            writer.close()
        if journal:
            journal.close()
    summary.seconds = time.perf_counter() - start
    click.echo(summary.format(dry_run=options.dry_run))
    if journal and summary.counts["tagged"]:
        click.echo(f"journal: {journal.path}  (undo: genrefy-tag --undo {journal.path})")
    if writer:
        click.echo(f"report: {writer.path}")
    return EXIT_FAILURES if summary.counts["failed"] else EXIT_OK


def _undo(journal_path: Path, *, dry_run: bool) -> int:
    from .journal import undo

    failed = 0
    for result in undo(journal_path, dry_run=dry_run):
        failed += result.action == "failed"
        reason = f"  ({result.reason})" if result.reason else ""
        click.echo(f"{result.action:<10} {result.path}{reason}")
    return EXIT_FAILURES if failed else EXIT_OK
