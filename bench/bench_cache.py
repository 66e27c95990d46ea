"""The analysis cache: a re-run over an unchanged 1,000-file library with a new threshold.

    python bench/bench_cache.py                 # 1,000 files, default model, -j = cores
    python bench/bench_cache.py --files 200 --model hybrid

Goal: the re-run with another ``--min-confidence`` takes < 5 % of the first run.
Builds a few 4-minute tracks from GTZAN clips (``bench_tagger.make_tracks``) and
hard-links them ``--files`` times into a temporary folder, with a fresh state
folder (so a fresh cache), then times, in separate processes:

1. the first ``genrefy-tag --dry-run`` (analyses every file, fills the cache);
2. the same with ``--min-confidence 0.5`` (a new threshold: answered from the cache);
3. the same with ``--top-k 2 --report review.html`` (cache, plus the review page);
4. the first command again with ``--force`` (bypasses the cache: analyses everything).

Needs the shared GTZAN clips.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tagger import ROOT, add_gtzan_option, make_tracks, run_cli  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gtzan_option(ap)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--sources", type=int, default=4, help="distinct tracks behind the links")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", default=None, help="default: the shipped default model")
    ap.add_argument("--skip-force", action="store_true", help="do not time the --force run")
    args = ap.parse_args()

    sources = make_tracks(args.gtzan, ROOT / ".cache" / "bench" / "tracks", args.sources)
    work = Path(tempfile.mkdtemp(prefix="cache-", dir=ROOT / ".cache" / "bench"))
    library, state = work / "library", work / "state"
    library.mkdir()
    for i in range(args.files):
        src = sources[i % len(sources)]
        os.link(src, library / f"{i:05d}{src.suffix}")
    os.environ["GENREFY_STATE_DIR"] = str(state)
    base = ["--dry-run", "-q", "-j", str(args.jobs)]
    if args.model:
        base += ["--model", args.model]
    print(
        f"{args.files} hard links to {len(sources)} four-minute tracks in {library}, "
        f"{os.cpu_count()} cores, -j {args.jobs}, model {args.model or '(default)'}"
    )
    html = str(work / "review.html")
    try:
        runs = [
            ("first run (fills the cache)", base),
            ("--min-confidence 0.5 (cache)", base + ["--min-confidence", "0.5"]),
            ("--top-k 2 --report html (cache)", base + ["--top-k", "2", "--report", html]),
        ]
        if not args.skip_force:
            runs.append(("--force (bypasses the cache)", [*base, "--force"]))
        first = None
        for label, cli_args in runs:
            secs, peak, out = run_cli([*cli_args, str(library)], force=False)
            summary = out.strip().splitlines()[0] if out.strip() else "(no output)"
            first = first or secs
            print(
                f"{label:<34} {secs:7.2f} s  {args.files / secs:7.1f} files/s  "
                f"{100 * secs / first:5.1f} % of the first run  peak {peak / 2**20:.0f} MB"
            )
            print(f"{'':<34} {summary}")
        db = state / "cache.sqlite"
        print(f"cache: {db.stat().st_size / 2**20:.1f} MB for {args.files} files")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
