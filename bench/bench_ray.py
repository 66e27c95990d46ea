"""Analysis on Ray against the local pool, and the driver's own costs, for ``--ray`` at scale.

    nice python bench/bench_ray.py [--files 24] [--out ray.json]

On the 4-minute MP3s of ``bench_speed.py`` (``.cache/bench/mp3-240s``), each in a fresh
process, with no analysis cache (every file is heard):

* **analysis** (``--rounds`` times, in turns; medians): ``tagger.run --dry-run`` with the
  local pool (``-j 1``, ``-j 2``) and with a Ray cluster started in the process
  (``--ray local``: 1 and 2 actors, and 2 actors with ``--ship-audio``): seconds to the
  first row (start-up: processes or cluster, model loads, first file) and steady files/s
  over the second half of the files;
* **overhead per track**: the round trip of a file through each pool when the analysis
  itself costs nothing (a path that does not exist: the worker answers at once) — what
  Ray adds to every file, whatever the model;
* **driver**: what stays on one machine whatever the cluster — a real run (read tags,
  decide, write, verify, journal) on files whose analyses are in the cache, in files/s,
  the same as a dry run (no writes), a dry run that also takes each file's identity
  (size, mtime, fingerprint: what ``--report`` records), and the Parquet report's rows/s.

This machine has 2 cores shared with other jobs: the figures are pessimistic and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_speed import make_mp3s  # bench/ is the script's folder
from bench_tagger import add_gtzan_option

ROOT = Path(__file__).resolve().parents[1]

# One configuration in a fresh interpreter: seconds to the first row, then steady files/s.
_ANALYSIS = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from genrefy_tagger.running.tagger import Options, run
folder, jobs, ray, ship = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None, sys.argv[4] == "1"
options = Options(dry_run=True, jobs=jobs, ray=ray, ship_audio=ship)  # no cache
times = []
for row in run([Path(folder)], options, journal=None):
    assert row.action != "failed", row
    times.append(time.perf_counter() - t0)
half = len(times) // 2  # the second half: past start-up and the first files in flight
steady = (len(times) - 1 - half) / (times[-1] - times[half])
print(json.dumps({"first_row_s": times[0], "steady_files_per_s": steady, "total_s": times[-1]}))
"""

# Round trips of a path the workers answer at once (it does not exist).
_OVERHEAD = r"""
import json, sys, time
from collections import deque
jobs, ray, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if ray:
    from genrefy_tagger.running.ray_pool import RayPool
    pool = RayPool(None, address="local", jobs=jobs)
else:
    from genrefy_tagger.listening.engine import AnalysisPool
    pool = AnalysisPool(None, jobs=jobs)
with pool:
    for _ in range(2 * jobs):  # workers up and warm
        pool.result(pool.submit("/nonexistent/warm.mp3"), "/nonexistent/warm.mp3")
    t = time.perf_counter()
    pending = deque()
    for i in range(n):
        p = f"/nonexistent/{i}.mp3"
        pending.append((pool.submit(p), p))
        if len(pending) > 2 * jobs:
            assert pool.result(*pending.popleft()).error
    while pending:
        assert pool.result(*pending.popleft()).error
    print(json.dumps({"ms_per_file": 1e3 * (time.perf_counter() - t) / n}))
"""


def _python(code: str, args: list[str], state: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["GENREFY_STATE_DIR"] = str(state)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"failed: {args}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def driver_files_per_s(paths: list[Path], state: Path) -> dict[str, float]:
    """A real run and a dry run on files whose analyses are cached: the driver's own work."""
    sys.path.insert(0, str(ROOT))
    os.environ["GENREFY_STATE_DIR"] = str(state)
    from genrefy_tagger.running.tagger import Options, run
    from genrefy_tagger.writing.journal import Journal

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache" / "bench") as tmp:
        folder = Path(tmp) / "lib"
        folder.mkdir()
        for p in paths:
            shutil.copy(p, folder / p.name)
        cache = Path(tmp) / "cache.sqlite"
        base = Options(min_confidence=0.0, jobs=2, cache_path=cache)
        list(run([folder], replace(base, dry_run=True), journal=None))  # fills the cache
        runs = (("dry_run_cached", True, False), ("dry_run_report_cached", True, True))
        for name, dry, identify in (*runs, ("write_cached", False, False)):
            options = replace(base, dry_run=dry, identify=identify)
            journal = None if dry else Journal(Path(tmp) / "journal.jsonl")
            t = time.perf_counter()
            rows = list(run([folder], options, journal=journal))
            out[f"{name}_files_per_s"] = len(rows) / (time.perf_counter() - t)
            if journal:
                journal.close()
                assert sum(r.action == "tag" for r in rows) == len(paths), rows
    return out


def parquet_rows_per_s(n: int) -> float:
    from genrefy_tagger.reporting.parquet_report import ParquetReport
    from genrefy_tagger.reporting.report import Row

    genres = [f"g{i}" for i in range(10)]
    scores = tuple((g, 0.1) for g in genres)
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache" / "bench") as tmp:
        t = time.perf_counter()
        with ParquetReport(Path(tmp) / "p.parquet", {"genres": genres, "model": "m"}) as report:
            for i in range(n):
                path = Path(f"/music/artist {i % 977}/album {i % 131}/{i:07d} track.mp3")
                row = Row(path, "tag", "", (), ("g0",), 0.1, 1.0, scores[1:3], scores=scores)
                report.write(row)
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gtzan_option(ap)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--overhead-files", type=int, default=400)
    ap.add_argument("--parquet-rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    folder = ROOT / ".cache" / "bench" / "mp3-240s"
    paths = make_mp3s(args.gtzan, folder, args.files)
    print(f"{len(paths)} MP3s of 240 s, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    result: dict[str, dict] = {"analysis": {}, "overhead_ms_per_file": {}}
    configs = {
        "local -j 1": (1, "", "0"),
        "local -j 2": (2, "", "0"),
        "ray 1 actor": (1, "local", "0"),
        "ray 2 actors": (2, "local", "0"),
        "ray 2 actors --ship-audio": (2, "local", "1"),
    }
    with tempfile.TemporaryDirectory() as state:
        sub = folder.parent / "mp3-240s-ray"  # only the first --files tracks
        shutil.rmtree(sub, ignore_errors=True)
        sub.mkdir()
        for p in paths:
            os.link(p, sub / p.name)
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        for r in range(args.rounds):  # configurations in turns: each sees the same load
            for name, (jobs, ray, ship) in configs.items():
                runs[name].append(_python(_ANALYSIS, [str(sub), str(jobs), ray, ship], Path(state)))
            print(f"round {r + 1} done, load {os.getloadavg()[0]:.1f}")
        for name, got in runs.items():
            first = statistics.median(g["first_row_s"] for g in got)
            rate = statistics.median(g["steady_files_per_s"] for g in got)
            result["analysis"][name] = {"first_row_s": first, "steady_files_per_s": rate}
            spread = ", ".join(f"{g['steady_files_per_s']:.2f}" for g in got)
            print(f"{name:<26} first row {first:5.1f} s, then {rate:.2f} files/s  ({spread})")
        shutil.rmtree(sub)
        for name, (jobs, ray) in {"local -j 2": (2, ""), "ray 2 actors": (2, "1")}.items():
            r = _python(_OVERHEAD, [str(jobs), ray, str(args.overhead_files)], Path(state))
            result["overhead_ms_per_file"][name] = r["ms_per_file"]
            print(f"round trip, no analysis, {name:<13} {r['ms_per_file']:.2f} ms per file")
        driver = driver_files_per_s(paths, Path(state))
    driver["parquet_rows_per_s"] = parquet_rows_per_s(args.parquet_rows)
    result["driver"] = driver
    print(
        f"driver, analyses cached: real run {driver['write_cached_files_per_s']:.1f} files/s, "
        f"dry run {driver['dry_run_cached_files_per_s']:.1f} files/s, with a report's "
        f"identities {driver['dry_run_report_cached_files_per_s']:.1f} files/s; "
        f"Parquet report {driver['parquet_rows_per_s']:.0f} rows/s"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
