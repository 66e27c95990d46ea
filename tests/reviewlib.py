"""A small real library with one file per outcome, shared by the cache, plan and page tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mutagen
from audiofiles import make_audio
from click.testing import CliRunner

from genrefy_tagger.cli import main

#: The fast shipped model (LiteRT); the default one would only make these tests slower.
MODEL = "hybrid"


def make_library(root: Path) -> Path:
    """Four taggable files in two folders, one silent (unsure), one with a genre
    (unchanged), one broken (failed)."""
    for i, kind in enumerate(("mp3", "flac", "ogg", "wav")):
        make_audio(root / f"Artist {i % 2}" / f"{i:02d} song.{kind}", seconds=6.5, seed=i)
    make_audio(root / "Quiet" / "silence.flac", seconds=6.5, kind="silence")
    tagged = make_audio(root / "Tagged" / "has genre.ogg", seconds=6.5, seed=9)
    audio = mutagen.File(tagged)
    audio["genre"] = ["Shoegaze"]
    audio.save()
    (root / "Broken").mkdir()
    (root / "Broken" / "broken.mp3").write_text("not audio")
    return root


def tag(*args: str):
    """``genrefy-tag`` in process, one analysis process, the fast model."""
    return CliRunner().invoke(main, ["--model", MODEL, "-j", "1", *args])


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
