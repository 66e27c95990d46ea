"""``genrefy-tag``: the command line. Thin: options in, :mod:`genrefy_tagger.cli.console` runs them.

``main`` checks the options and dispatches: ``--undo`` and a library run to
:mod:`genrefy_tagger.cli.console`, ``--apply`` and ``--clear-cache`` to
:mod:`genrefy_tagger.cli.review_cli`. Only click and ``console`` (which imports the rest
inside its functions) load with this module, so ``--help`` stays instant; the audio stack
and the model runtime load when a command actually runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..listening.model import shipped_defaults
from . import console
from .console import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE

__all__ = ["EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_STOPPED", "EXIT_USAGE", "main"]

#: Shipped models, for help and messages; ``genrefy_tagger.listening.model.bundled_models`` is the
#: truth
#: (importing it here would slow ``--help`` down).
SHIPPED = shipped_defaults()
MODEL_NAMES = " or ".join(f"{n} (default)" if d else n for n, d, _, _ in SHIPPED)
THRESHOLDS = ", ".join(f"{t:.2f} for {n}" for n, _, t, _ in SHIPPED)
WINDOWS = ", ".join(f"{w} for {n}" for n, _, _, w in SHIPPED)


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
    f"[default: the model's own, {THRESHOLDS}]",
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
    help=f"Listen to N 3-second windows per track.  [default: the model's own, {WINDOWS}]",
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
@click.option(
    "--hard-links",
    type=click.Choice(["skip", "in-place", "break"]),
    default="skip",
    show_default=True,
    help="A file with several hard links (names): leave it unchanged and say so (skip), write "
    "it in its own inode so every name sees the new tags (in-place, verified, not atomic), or "
    "give this name a new file and leave the other names as they were (break). Also for --undo "
    "and --apply.",
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
    hard_links: str,
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
            sys.exit(console.undo(undo_path, dry_run=dry_run, hard_links=hard_links))
        if apply_path is not None:
            if len(paths) > 1:
                raise click.UsageError("--apply takes at most one PATH: the plan's folder")
            from .review_cli import apply

            sys.exit(
                apply(
                    apply_path,
                    paths[0] if paths else None,
                    journal_path,
                    dry_run,
                    keep_mtime,
                    hard_links,
                )
            )
        if clear_cache:
            from .review_cli import clear_cache as clear

            clear()
            if not paths:
                sys.exit(EXIT_OK)
        console.check_arguments(paths, report, model)
        from .review_cli import check_extras

        check_extras(report, ray_address, ship_audio)
        options = console.tag_options(
            dry_run=dry_run,
            overwrite=overwrite,
            force=force,
            top_k=top_k,
            min_confidence=min_confidence,
            keep_mtime=keep_mtime,
            hard_links=hard_links,
            recursive=not no_recursive,
            jobs=jobs,
            model=model,
            max_windows=max_windows,
            all_windows=all_windows,
            identify=report is not None,
            ray=ray_address,
            ship_audio=ship_audio,
        )
        sys.exit(console.tag(paths, options, report, journal_path, quiet=quiet, verbose=verbose))
    except KeyboardInterrupt:  # before or after the run proper (e.g. while loading the model)
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
