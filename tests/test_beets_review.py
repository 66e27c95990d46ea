"""``beet genrefy -p --report FILE`` and the analysis cache shared with ``genrefy-tag``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from audiofiles import make_audio
from beets import ui
from beets.library import Item
from beets.test.helper import PluginTestHelper
from beets.util import cached_classproperty
from mediafile import MediaFile
from reviewlib import tag

from genrefy_tagger.listening.model import resolve_bundle
from genrefy_tagger.running.cache import default_cache_path
from genrefy_tagger.running.plan import read_plan


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("beets_review")
    return {
        "mp3": make_audio(d / "music.mp3", seconds=6.5, seed=1),
        "flac": make_audio(d / "music.flac", seconds=6.5, seed=2),
        "silent": make_audio(d / "silent.flac", seconds=6.5, kind="silence"),
    }


class TestReview(PluginTestHelper):
    plugin: ClassVar[str] = "genrefy"
    preload_plugin: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _plugin(self, setup: None, sources: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
        monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))
        self.config["genrefy"].set(
            {"model": str(resolve_bundle("hybrid")), "min_confidence": 0.0, "jobs": 1}
        )
        self.load_plugins("genrefy")
        cached_classproperty.cache.clear()
        self.items = {}
        for name, title in (("mp3", "one"), ("flac", "two"), ("silent", "hush")):
            dest = self.lib_path / f"{title}{sources[name].suffix}"
            shutil.copyfile(sources[name], dest)
            item = Item.from_path(dest)
            item.update({"title": title, "artist": "Artist", "genres": []})
            item.add(self.lib)
            item.try_write()
            item.store()
            self.items[title] = item

    def test_pretend_report_json_and_html(self, tmp_path: Path, capsys) -> None:
        report = tmp_path / "beets.json"
        self.run_command("genrefy", "-p", "--report", str(report))
        assert f"report: {report}" in capsys.readouterr().out
        plan = json.loads(report.read_text())
        actions = {Path(r["path"]).stem: r["action"] for r in plan["rows"]}
        assert actions == {"one": "tag", "two": "tag", "hush": "unsure"}
        assert plan["model"].startswith("gtzan-hybrid@") and plan["dry_run"] is True
        assert all(r["fingerprint"].startswith("sha256:") for r in plan["rows"])
        assert len(read_plan(report).to_write) == 2  # a valid plan for --apply
        html = tmp_path / "beets.html"
        self.run_command("genrefy", "-p", "--report", str(html))
        page = html.read_text()
        assert page.count('"action":"tag"') == 2 and "silent" in page
        assert all(i.get("genrefy_genre") is None for i in self.lib.items())  # pretend

    @pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
    def test_a_report_on_a_full_disk_is_one_line(self, tmp_path: Path) -> None:
        report = tmp_path / "beets.csv"
        report.symlink_to("/dev/full")  # every write to it: "No space left on device"
        with pytest.raises(ui.UserError) as raised:
            self.run_command("genrefy", "--report", str(report))
        assert str(raised.value) == (
            f"genrefy: cannot write the report {report}: No space left on device"
        )
        tagged = {i.title for i in self.lib.items() if i.get("genrefy_genre") is not None}
        assert tagged == {"one", "two"}  # the report comes last: the items are done

    def test_beets_reuses_what_genrefy_tag_analysed(self, capsys) -> None:
        done = tag("--dry-run", "--min-confidence", "0", str(self.lib_path))
        assert done.exit_code == 0, done.output
        one = str(self.lib_path / "one.mp3")
        with sqlite3.connect(default_cache_path()) as db:
            n_genres, blob = db.execute(
                "SELECT n_genres, probs FROM analyses WHERE path = ?", (one,)
            ).fetchone()
            probs = np.zeros_like(np.frombuffer(blob, "<f8")).reshape(-1, n_genres)
            probs[:, 5] = 1.0  # jazz: what no analysis of this file would say
            db.execute("UPDATE analyses SET probs = ? WHERE path = ?", (probs.tobytes(), one))
        capsys.readouterr()
        self.run_command("genrefy", "-p")
        out = capsys.readouterr().out
        assert "Artist - one: (none) → Jazz (confidence 1.00" in out, out
        assert "Artist - two: (none) → Jazz" not in out

    def test_written_and_undone_files_keep_their_cached_analysis(self) -> None:
        self.config["import"]["write"] = True  # beet genrefy writes files like import does
        one = self.lib_path / "one.mp3"

        def keyed_to_the_file() -> bool:
            st = one.stat()
            with sqlite3.connect(default_cache_path()) as db:
                row = db.execute(
                    "SELECT size, mtime_ns FROM analyses WHERE path = ?", (str(one),)
                ).fetchone()
            return row == (st.st_size, st.st_mtime_ns)

        before = one.stat()
        self.run_command("genrefy", "title:one")
        assert self.lib.items("title:one").get().get("genrefy_genre") is not None
        assert MediaFile(one).genres  # beets wrote the genre into the file
        assert one.stat().st_mtime_ns != before.st_mtime_ns
        assert keyed_to_the_file()  # so genrefy-tag will not listen again
        written = one.stat()
        self.run_command("genrefy", "--undo", "title:one")
        assert not MediaFile(one).genres and one.stat().st_mtime_ns != written.st_mtime_ns
        assert keyed_to_the_file()
