"""The beets plugin on real temporary libraries, through beets' own test helpers.

Real audio files (tests/audiofiles.py), the real (untrained) ``tiny_bundle``,
beets' real command line, importer, database and tag writer: nothing is mocked.
The tiny model calls the ``music`` test signal Metal (~0.5) and noise Classical
(~0.12), so tests read the genre it chose back rather than hard-coding it, use
``min_confidence: 0`` to get decisions and a high threshold for the unsure path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import mutagen
import pytest
from audiofiles import make_audio
from beets.library import Item
from beets.test.helper import ImportHelper, PluginMixin, PluginTestHelper
from beets.util import cached_classproperty
from mediafile import MediaFile

from genrefy_tagger.reading.config import GTZAN_GENRES, display_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Template files, made once; each test copies what it needs."""
    d = tmp_path_factory.mktemp("beets_sources")
    corrupt = d / "corrupt.mp3"
    corrupt.write_text("this is a text file, not an MP3\n")
    return {
        "mp3": make_audio(d / "music.mp3", seconds=6.5, seed=1),
        "flac": make_audio(d / "music.flac", seconds=6.5, seed=2),
        "noise.mp3": make_audio(d / "noise.mp3", seconds=6.5, kind="noise", seed=3),
        "noise.flac": make_audio(d / "noise.flac", seconds=6.5, kind="noise", seed=4),
        "short.mp3": make_audio(d / "short.mp3", seconds=2.0),
        "silent.flac": make_audio(d / "silent.flac", seconds=6.5, kind="silence"),
        "corrupt.mp3": corrupt,
    }


def sha256(path: str | bytes | Path) -> str:
    return hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()


def file_genres(path: str | bytes | Path) -> list[str]:
    """The genre tag as mutagen reads it, independently of beets."""
    audio = mutagen.File(os.fsdecode(path))
    if audio.tags is None:
        return []
    frame = audio.tags.get("TCON") if "TCON" in audio.tags else audio.tags.get("genre")
    return list(getattr(frame, "text", frame) or [])


def configure(helper: PluginMixin, bundle: Path, **options: object) -> None:
    helper.config["import"]["write"] = True
    defaults = {"model": str(bundle), "min_confidence": 0.0, "jobs": 1}
    helper.config["genrefy"].set({**defaults, **options})
    helper.load_plugins("genrefy")
    # beets caches Item._types per class; it must be rebuilt with this plugin's item_types.
    cached_classproperty.cache.clear()


class TestCommand(PluginTestHelper):
    plugin: ClassVar[str] = "genrefy"
    preload_plugin: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _plugin(self, setup: None, tiny_bundle: Path, sources: dict[str, Path]) -> None:
        self.bundle = tiny_bundle
        self.sources = sources
        configure(self, tiny_bundle)

    def add(self, source: str, title: str, *, genres: tuple[str, ...] = (), **fields) -> Item:
        """A library item whose file is a copy of ``source``, tags written by beets."""
        dest = self.lib_path / f"{title}{self.sources[source].suffix}"
        shutil.copyfile(self.sources[source], dest)
        item = Item.from_path(dest)
        item.update({"title": title, "artist": "Artist", "genres": list(genres), **fields})
        item.add(self.lib)
        item.try_write()
        item.store()
        return item

    def reload(self, item: Item) -> Item:
        return self.lib.get_item(item.id)

    def snapshot(self) -> tuple[dict, dict]:
        db = {i.id: dict(i) for i in self.lib.items()}
        files = {i.id: sha256(i.path) for i in self.lib.items() if os.path.exists(i.path)}
        return db, files

    def test_tags_empty_items_in_db_and_files(self, capsys: pytest.CaptureFixture[str]) -> None:
        mp3 = self.add("mp3", "one")
        flac = self.add("flac", "two")
        jazz = self.add("flac", "three", genres=("Jazz",))
        self.run_command("genrefy")
        for item in map(self.reload, (mp3, flac)):
            assert item.genrefy_genre in GTZAN_GENRES
            assert item.genres == [display_name(item.genrefy_genre)]
            assert isinstance(item.genrefy_confidence, float)  # typed, not the stored string
            assert 0.0 < item.genrefy_confidence <= 1.0
            assert item.genrefy_model == "tiny-test@0"
            assert json.loads(item.genrefy_previous) == []
            assert file_genres(item.path) == item.genres
        jazz = self.reload(jazz)
        assert jazz.genres == ["Jazz"] and file_genres(jazz.path) == ["Jazz"]
        assert jazz.get("genrefy_model", with_album=False) is None
        # A numeric range query only works on a FLOAT-typed flexible field.
        assert {i.id for i in self.lib.items("genrefy_confidence:..1")} == {mp3.id, flac.id}
        assert not list(self.lib.items("genrefy_confidence:1.5.."))
        assert not capsys.readouterr().out  # results go to the log, not stdout

    def test_pretend_stores_and_writes_nothing(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.add("mp3", "one")
        self.add("flac", "two")
        self.add("mp3", "old", genres=("Jazz",))
        before = self.snapshot()
        capsys.readouterr()
        self.run_command("genrefy", "-p", "-f")
        out = capsys.readouterr().out
        line = r"Artist - {}: {} → \w[\w-]* \(confidence 0\.\d\d, agreement 1\.00\)"
        assert re.search(line.format("one", re.escape("(none)")), out), out
        assert re.search(line.format("old", "Jazz"), out), out
        assert "pretend, nothing changed: 3 to tag" in out
        self.run_command("genrefy", "-p", "-a", "-f")
        self.run_command("genrefy", "-p", "--undo")
        assert self.snapshot() == before

    def test_force_then_undo_restores_db_and_file(self) -> None:
        item = self.add("mp3", "song", genres=("Jazz",))
        self.run_command("genrefy")
        assert self.reload(item).genres == ["Jazz"]  # kept without --force
        self.run_command("genrefy", "-f")
        self.run_command("genrefy", "-f")  # a second run keeps the genres from before the first
        item = self.reload(item)
        assert item.genres == [display_name(item.genrefy_genre)] != ["Jazz"]
        assert file_genres(item.path) == item.genres
        assert json.loads(item.genrefy_previous) == ["Jazz"]
        self.run_command("genrefy", "--undo")
        item = self.reload(item)
        assert item.genres == ["Jazz"] and file_genres(item.path) == ["Jazz"]
        for key in ("genrefy_genre", "genrefy_confidence", "genrefy_model", "genrefy_previous"):
            assert item.get(key, with_album=False) is None

    def test_hard_linked_file_is_skipped_by_default_and_written_in_place_on_request(self) -> None:
        item = self.add("mp3", "linked")
        other = Path(os.fsdecode(item.path)).with_name("second name.mp3")
        os.link(os.fsdecode(item.path), other)
        before = self.snapshot()
        self.run_command("genrefy")
        assert self.snapshot() == before  # neither the file nor the database changed
        self.config["genrefy"]["hard_links"] = "in-place"
        self.run_command("genrefy")
        item = self.reload(item)
        assert item.genres and file_genres(other) == file_genres(item.path) == item.genres
        assert os.stat(other).st_ino == os.stat(item.path).st_ino

    def test_count_and_names(self) -> None:
        names = {g: f"My {g}" for g in GTZAN_GENRES}
        self.config["genrefy"].set({"count": 2, "names": names})
        item = self.add("flac", "two")
        self.run_command("genrefy")
        item = self.reload(item)
        assert len(item.genres) == 2 and item.genres[0] == f"My {item.genrefy_genre}"
        assert file_genres(item.path) == item.genres

    def test_unsure_stores_nothing(self, capsys: pytest.CaptureFixture[str]) -> None:
        items = [
            self.add("mp3", "loud"),
            self.add("short.mp3", "short"),
            self.add("silent.flac", "silent"),
        ]
        before = self.snapshot()
        self.run_command("genrefy", "--min-confidence", "0.99")
        self.config["genrefy"]["min_confidence"] = 0.99
        self.run_command("genrefy", "-p")
        assert self.snapshot() == before
        out = capsys.readouterr().out
        assert re.search(r"Artist - loud: unsure \(confidence 0\.\d\d < 0\.99; ", out), out
        assert "Artist - short: unsure (too short (2.0 s; need 3 s))" in out
        assert "Artist - silent: unsure (silent" in out
        assert all(not self.reload(i).genres for i in items)

    def test_bad_inputs_are_logged_and_skipped(self, caplog: pytest.LogCaptureFixture) -> None:
        good = self.add("mp3", "good")
        missing = self.add("flac", "missing")
        os.remove(missing.path)
        corrupt_path = self.lib_path / "corrupt.mp3"
        shutil.copyfile(self.sources["corrupt.mp3"], corrupt_path)
        corrupt = self.add_item(title="corrupt", artist="Artist", path=corrupt_path)
        no_path = Item(title="nopath", artist="Artist")
        no_path.add(self.lib)
        corrupt_hash = sha256(corrupt.path)
        with caplog.at_level(logging.INFO, logger="beets"):
            self.run_command("genrefy")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 3, warnings
        assert any("missing: cannot analyse" in w and "not found" in w for w in warnings)
        assert any("corrupt: cannot analyse" in w for w in warnings)
        assert any("nopath: has no file path" in w for w in warnings)
        assert "done: 3 failed, 1 tagged" in caplog.text
        assert self.reload(good).genres  # the run went on past the bad items
        for bad in (missing, corrupt, no_path):
            bad = self.reload(bad)
            assert not bad.genres and bad.get("genrefy_model", with_album=False) is None
        assert sha256(corrupt.path) == corrupt_hash

    def test_a_file_name_that_is_not_utf8(self, tmp_path: Path, capsys) -> None:
        """beets keeps paths as bytes; a Latin-1 name is analysed (through the shared cache),
        reported under its exact bytes, tagged and undone like any other item."""
        dest = os.fsencode(self.lib_path) + b"/caf\xe9.mp3"
        shutil.copyfile(self.sources["mp3"], dest)
        item = Item.from_path(dest)
        item.update({"title": "cafe", "artist": "Artist"})
        item.add(self.lib)
        item.store()
        report = tmp_path / "r.json"
        self.run_command("genrefy", "-p", "--report", str(report))
        assert "Artist - cafe: (none) → " in capsys.readouterr().out
        rows = json.loads(report.read_bytes().decode("utf-8"))["rows"]
        assert [os.fsencode(r["path"]) for r in rows] == [os.path.abspath(item.path)]
        self.run_command("genrefy")
        item = self.reload(item)
        assert item.path.endswith(b"/caf\xe9.mp3") and item.genrefy_model == "tiny-test@0"
        assert item.genres == [display_name(item.genrefy_genre)] == file_genres(item.path)
        self.run_command("genrefy", "--undo")
        assert not self.reload(item).genres and not file_genres(item.path)

    def test_query_matching_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        item = self.add("mp3", "one")
        with caplog.at_level(logging.INFO, logger="beets"):
            self.run_command("genrefy", "title:no-such-title")
            self.run_command("genrefy", "-a", "album:no-such-album")
        assert "no items match the query" in caplog.text
        assert "no albums match the query" in caplog.text
        assert not self.reload(item).genres

    def test_album_vote(self, capsys: pytest.CaptureFixture[str]) -> None:
        tracks = [
            self.add("mp3", "music", album="Mixed"),
            self.add("noise.flac", "noise a", album="Mixed"),
            self.add("noise.mp3", "noise b", album="Mixed"),
        ]
        album = self.lib.add_album(tracks)
        self.run_command("genrefy", "-a", "-p")
        out = capsys.readouterr().out
        # One track says Metal at ~0.5, two say Classical at ~0.1 each: Metal wins the
        # confidence-weighted vote, and the 1-in-3 agreement is reported, not hidden.
        head = re.search(r"Artist - Mixed: \(none\) → (\S+) \(vote share (0\.\d\d)", out)
        assert head, out
        assert "3 of 3 tracks voted); low agreement: 33% of voting tracks" in out
        assert re.search(r"votes: \S+ 0\.\d\d, \S+ 0\.\d\d", out)
        assert re.search(r"  Artist - noise a: Classical \(confidence 0\.1\d", out)

        self.run_command("genrefy", "-a", "--min-confidence", "0.9")
        assert not self.lib.get_album(album.id).genres  # unsure album: left alone
        self.run_command("genrefy", "-a", "-p", "--min-confidence", "0.9")
        assert f"Artist - Mixed: unsure (vote share {head[2]} < 0.90)" in capsys.readouterr().out

        self.run_command("genrefy", "-a")
        album = self.lib.get_album(album.id)
        assert album.genres == [head[1]] and album.genrefy_model == "tiny-test@0"
        for track in map(self.reload, tracks):
            assert track.genres == [head[1]] and file_genres(track.path) == [head[1]]
            assert track.genrefy_confidence == pytest.approx(float(head[2]), abs=0.01)
        self.run_command("genrefy", "-a", "--undo")
        assert not self.lib.get_album(album.id).genres
        assert all(not self.reload(t).genres and not file_genres(t.path) for t in tracks)

    def test_parallel_jobs_match_serial(self) -> None:
        items = [self.add(src, f"t{i}") for i, src in enumerate(("mp3", "flac", "noise.mp3"))]
        self.run_command("genrefy")
        serial = [(self.reload(i).genres, self.reload(i).genrefy_confidence) for i in items]
        self.run_command("genrefy", "--undo")
        self.config["genrefy"]["jobs"] = 2
        self.run_command("genrefy")
        parallel = [(self.reload(i).genres, self.reload(i).genrefy_confidence) for i in items]
        assert parallel == serial and all(genres for genres, _ in serial)

    def test_a_worker_that_dies_fails_only_its_item(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A decoder crash or the OOM killer ends a worker process: here it really exits
        (tests/worker_crash.py) on the item whose file is named ``crash``, which breaks the
        pool and every analysis in flight. Only that item fails; the others are tagged."""
        import worker_crash

        from genrefy_tagger.listening import engine

        monkeypatch.setattr(engine, "_analyse_in_worker", worker_crash.analyse_or_die)
        self.config["genrefy"].set({"jobs": 2, "cache": False})  # every item reaches a worker
        sources = ("mp3", "flac", "noise.mp3", "flac", "noise.flac")
        titles = ("one", "crash", "three", "four", "five")
        items = [self.add(src, title) for src, title in zip(sources, titles, strict=True)]
        crashed = items[1]
        with caplog.at_level(logging.INFO, logger="beets"):
            self.run_command("genrefy")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "crash: cannot analyse" in warnings[0], warnings
        assert "the analysis process died on this file" in warnings[0]
        assert f"done: 1 failed, {len(items) - 1} tagged" in caplog.text
        crashed = self.reload(crashed)
        assert not crashed.genres and crashed.get("genrefy_model", with_album=False) is None
        assert not file_genres(crashed.path)
        for item in map(self.reload, items):
            if item.id != crashed.id:
                assert item.genres == [display_name(item.genrefy_genre)]
                assert file_genres(item.path) == item.genres


class TestImport(PluginMixin, ImportHelper):
    plugin: ClassVar[str] = "genrefy"
    preload_plugin: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _album(self, setup: None, tiny_bundle: Path, sources: dict[str, Path]) -> None:
        self.bundle = tiny_bundle
        album_dir = self.import_path / "album"
        album_dir.mkdir()
        self.src = {}
        for n, (source, genres) in enumerate((("mp3", []), ("flac", ["Jazz"])), start=1):
            path = album_dir / f"track_{n}{sources[source].suffix}"
            shutil.copyfile(sources[source], path)
            tags = MediaFile(path)
            tags.update(
                {"artist": "Tag Artist", "album": "Tag Album", "title": f"Track {n}", "track": n}
            )
            tags.genres = genres
            tags.save()
            self.src[n] = (path, sha256(path))

    def imported(self) -> dict[int, Item]:
        return {item.track: item for item in self.lib.items()}

    def test_auto_fills_empty_genres_and_keeps_existing(self) -> None:
        configure(self, self.bundle)
        self.setup_importer(autotag=False, write=True).run()
        items = self.imported()
        new, kept = items[1], items[2]
        assert new.genres == [display_name(new.genrefy_genre)]
        assert new.genrefy_model == "tiny-test@0"
        assert file_genres(new.path) == new.genres  # written after an as-is import too
        assert kept.genres == ["Jazz"] and file_genres(kept.path) == ["Jazz"]
        assert kept.get("genrefy_model", with_album=False) is None
        # Copy mode: the files outside the library are never touched.
        assert all(sha256(path) == digest for path, digest in self.src.values())

    def test_auto_album_mode_with_force(self) -> None:
        configure(self, self.bundle, album=True, force=True)
        self.setup_importer(autotag=False, write=False).run()
        album = self.lib.albums().get()
        items = self.imported()
        assert album.genres and album.genrefy_model == "tiny-test@0"
        assert items[1].genres == items[2].genres == album.genres
        assert json.loads(items[2].genrefy_previous) == ["Jazz"]
        assert file_genres(items[2].path) == ["Jazz"]  # import.write: no

    def test_a_broken_model_never_fails_the_import(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        configure(self, tmp_path / "no-bundle-here")
        with caplog.at_level(logging.WARNING, logger="beets"):
            self.setup_importer(autotag=False, write=True).run()
        assert len(self.lib.items()) == 2
        assert not self.imported()[1].genres
        assert "skipped" in caplog.text and "not a genrefy model bundle" in caplog.text

    def test_auto_off(self) -> None:
        configure(self, self.bundle, auto=False)
        self.setup_importer(autotag=False, write=True).run()
        assert not self.imported()[1].genres


WRAPPER = """
import json, sys
from beets import ui
try:
    ui.main(sys.argv[1:])
except SystemExit:
    pass
mods = [m.split(".")[0] for m in sys.modules]
print(json.dumps({
    "tensorflow": "tensorflow" in mods or "keras" in mods,
    "plugin": "beetsplug.genrefy" in sys.modules,
    "engine": "genrefy_tagger.listening.engine" in sys.modules,
}))
"""


def test_beet_cli_never_imports_tensorflow(
    tmp_path: Path, tiny_bundle: Path, sources: dict[str, Path]
) -> None:
    """``beet --help`` loads the plugin but not the engine; analysis runs on LiteRT."""
    (tmp_path / "config.yaml").write_text(
        f"directory: {tmp_path / 'music'}\nlibrary: {tmp_path / 'lib.db'}\n"
        "plugins: [genrefy]\ncreate_backup_before_migrations: no\n"
        f"genrefy:\n  model: {tiny_bundle}\n  min_confidence: 0\n  jobs: 1\n"
    )
    (tmp_path / "in").mkdir()
    shutil.copyfile(sources["mp3"], tmp_path / "in" / "song.mp3")
    env = {**os.environ, "BEETSDIR": str(tmp_path), "HOME": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))

    def beet(*args: str) -> tuple[str, dict]:
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])

    out, seen = beet("--help")
    assert "genrefy" in out and seen == {"tensorflow": False, "plugin": True, "engine": False}
    _, seen = beet("import", "-A", "-q", str(tmp_path / "in"))
    assert seen == {"tensorflow": False, "plugin": True, "engine": True}
    out, _ = beet("ls", "-f", "$genres|$genrefy_model")
    assert re.match(r"\w[\w-]*\|tiny-test@0$", out.splitlines()[0]), out
