"""Analysis on a real local Ray cluster, and the Parquet report (``--ray``, ``.parquet``).

Needs the optional extra ``genrefy[ray]`` (ray, pyarrow); ``.ci/run`` installs it with the
test extra, so these run in CI. Few files, to keep the module short on a 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'genrefy[ray]')")
pq = pytest.importorskip(
    "pyarrow.parquet", reason="pyarrow is not installed (pip install 'genrefy[ray]')"
)

from genrefy_tagger.cli import main  # noqa: E402
from genrefy_tagger.cli.review_cli import report_meta  # noqa: E402
from genrefy_tagger.reporting.parquet_report import ParquetReport  # noqa: E402
from genrefy_tagger.running.tagger import Options, run  # noqa: E402

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop")

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """A real two-CPU Ray cluster in this process; RayPool joins it (--ray auto)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def make_library(gtzan_dir: Path, folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        source = gtzan_dir / "genres" / genre / f"{genre}.{i // len(GENRES) + 2:05d}.ogg"
        paths.append(Path(shutil.copy(source, folder / f"{i:02d} {source.name}")))
    return paths


def garble(path: Path) -> None:
    """Make ``path`` undecodable, keeping its size and mtime (what the cache keys on):
    a file analysed again now fails, one answered from what is stored does not."""
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def rows_of(options: Options, library: Path) -> dict[str, tuple]:
    return {
        r.path.name: (r.action, r.proposed, r.confidence)
        for r in run([library], options, journal=None)
    }


def test_ray_gives_the_rows_of_the_local_pool(cluster, gtzan_dir: Path, tmp_path: Path):
    library = tmp_path / "Music"
    make_library(gtzan_dir, library, 4)
    local = rows_of(Options(dry_run=True, jobs=1), library)
    on_ray = rows_of(Options(dry_run=True, ray="auto", jobs=2), library)
    shipped = rows_of(Options(dry_run=True, ray="auto", jobs=2, ship_audio=True), library)
    assert len(local) == 4
    for rows in (on_ray, shipped):
        assert rows.keys() == local.keys()
        for name, (action, proposed, confidence) in rows.items():
            assert (action, proposed) == local[name][:2], name
            assert confidence == pytest.approx(local[name][2], abs=1e-6), name


def test_killed_actors_still_give_every_file_one_row(cluster, gtzan_dir: Path, tmp_path: Path):
    library = tmp_path / "Music"
    paths = make_library(gtzan_dir, library, 8)
    rows, killed = [], []
    before = set(ray.util.list_named_actors())
    for row in run([library], Options(dry_run=True, ray="auto", jobs=2), journal=None):
        rows.append(row)
        names = sorted(set(ray.util.list_named_actors()) - before)
        if len(rows) == 1:  # files are in flight on both actors: one dies, Ray restarts it
            killed.append(names[0])
            ray.kill(ray.get_actor(names[0]), no_restart=False)
        elif len(rows) == 2:  # this one for good: the pool starts another in its place
            killed.append(names[1])
            ray.kill(ray.get_actor(names[1]), no_restart=True)
    assert len(killed) == 2
    assert sorted(r.path for r in rows) == sorted(paths)
    assert [r.action for r in rows if r.action == "failed"] == [], [r.reason for r in rows]
    assert all(r.confidence is not None for r in rows)


def test_parquet_report_has_one_row_per_file(cluster, gtzan_dir: Path, tmp_path: Path):
    library = tmp_path / "Music"
    paths = make_library(gtzan_dir, library, 4)
    (library / "broken.mp3").write_bytes(b"not audio at all" * 100)
    latin1 = os.fsdecode(os.fsencode(library) + b"/caf\xe9.ogg")  # a name that is not UTF-8
    paths.append(Path(shutil.copy(paths[0], latin1)))
    report = tmp_path / "predictions.parquet"
    args = ["--dry-run", "--ray", "auto", "-j", "2", "--report", str(report), str(library)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # the broken file fails, the run goes on
    assert "6 files: " in result.output and "1 failed" in result.output
    assert not report.with_name(report.name + ".partial").exists()
    table = pq.read_table(report)
    rows = {
        Path(os.fsdecode(r["path_bytes"]) if r["path_bytes"] else r["path"]).name: r
        for r in table.to_pylist()
    }
    assert sorted(rows) == sorted([p.name for p in paths] + ["broken.mp3"])
    assert rows["caf\udce9.ogg"]["path"].endswith("caf\\xe9.ogg")  # readable, and lossless:
    assert rows["caf\udce9.ogg"]["path_bytes"] == os.fsencode(paths[-1])
    meta = table.schema.metadata[b"genrefy"].decode()
    assert '"genres": ["Blues", "Classical"' in meta
    for name in (p.name for p in paths):
        row = rows[name]
        assert sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-9)
        assert len(row["probabilities"]) == 10
        assert max(row["probabilities"]) == pytest.approx(row["confidence"])
        assert row["model"].startswith("gtzan-musicnn@")
        assert row["action"] in ("tag", "unsure")
    assert rows["broken.mp3"]["action"] == "failed" and rows["broken.mp3"]["probabilities"] is None


def test_resume_from_parquet_checkpoint_analyses_nothing_again(
    cluster, gtzan_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    library = tmp_path / "Music"
    paths = make_library(gtzan_dir, library, 6)
    latin1 = os.fsdecode(os.fsencode(library) + b"/00a caf\xe9.ogg")  # second in walk order
    paths.append(Path(shutil.copy(paths[1], latin1)))
    report = tmp_path / "predictions.parquet"
    options = Options(dry_run=True, ray="auto", jobs=2, identify=True)  # no analysis cache
    # An interrupted run: three rows reported, then Ctrl-C (the CLI closes incomplete).
    writer = ParquetReport(report, report_meta((library,), library.resolve(), options))
    with closing(run([library], options, journal=None)) as rows:
        for i, row in enumerate(rows):
            writer.write(row)
            if i == 2:
                break
    writer.close(complete=False)
    assert not report.exists()
    done = sorted(paths)[:3]
    assert Path(latin1) in done
    for path in done:
        garble(path)  # analysed again, these would fail
    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "fresh-state"))  # an empty cache
    args = ["--dry-run", "--ray", "auto", "-j", "2", "--report", str(report), str(library)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "resuming: 3 files" in result.output
    assert "4 files: " in result.output  # only the rest went through this run
    rows = pq.read_table(report).to_pylist()
    names = [os.fsdecode(r["path_bytes"]) if r["path_bytes"] else r["path"] for r in rows]
    assert sorted(map(Path, names)) == sorted(p.resolve() for p in paths)
    assert all(r["action"] != "failed" for r in rows)


def test_resume_through_the_analysis_cache(cluster, gtzan_dir: Path, tmp_path: Path):
    library = tmp_path / "Music"
    paths = make_library(gtzan_dir, library, 5)
    cache = tmp_path / "cache.sqlite"
    options = Options(dry_run=True, ray="auto", jobs=2, cache_path=cache)
    first = {}
    with closing(run([library], options, journal=None)) as rows:
        for row in rows:
            first[row.path] = row
            if len(first) == 3:
                break  # interrupted
    marked, *heard = first
    # The stored analysis of one file now says "Metal" for sure: a rerun that listened
    # again would not say so.
    with sqlite3.connect(cache) as db:
        blob, n = db.execute(
            "SELECT probs, n_genres FROM analyses WHERE path = ?", (str(marked),)
        ).fetchone()
        probs = np.zeros_like(np.frombuffer(blob, dtype="<f8").reshape(-1, n))
        probs[:, GENRES.index("metal")] = 1.0
        db.execute("UPDATE analyses SET probs = ? WHERE path = ?", (probs.tobytes(), str(marked)))
    again = {r.path: r for r in run([library], options, journal=None)}
    assert sorted(again) == sorted(paths)
    assert again[marked].proposed == ("Metal",)
    for path in heard:  # answered from the cache, decided exactly as when first heard
        assert again[path].action == first[path].action != "failed"
        assert again[path].confidence == pytest.approx(first[path].confidence, abs=1e-9)


def test_ship_audio_needs_ray(tmp_path: Path):
    result = CliRunner().invoke(main, ["--dry-run", "--ship-audio", str(tmp_path)])
    assert result.exit_code == 2 and "--ship-audio goes with --ray" in result.output


def test_parquet_report_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path):
    report = tmp_path / "predictions.parquet"
    report.with_name(report.name + ".partial").write_text("a file where its parts would go")
    args = ["--dry-run", "--report", str(report), str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"cannot write the report {report}" in result.output
