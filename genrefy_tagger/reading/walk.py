"""Find the audio files under the paths a user gave, lazily and in a stable order."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    """A path to process; ``problem`` is set when it was named but cannot be used."""

    path: Path
    problem: str | None = None


def walk(
    paths: Iterable[str | os.PathLike],
    *,
    extensions: Collection[str],
    recursive: bool = True,
) -> Iterator[Found]:
    """Yield audio files in a deterministic order, streaming (no full listing in memory).

    Folders are walked depth-first with entries sorted by name; hidden files and
    folders (leading ``.``) and files with other extensions are skipped; symlinked
    folders are followed once (a loop is never entered twice). A file named
    explicitly is always yielded — with a ``problem`` when it is missing or not a
    supported type — so the user hears about it; so is an entry with a music
    extension that is a broken link, a pipe or a device.
    """
    exts = {e.lower() for e in extensions}
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            yield from _walk_dir(path, exts, recursive, seen_dirs)
        elif not path.exists():
            yield Found(path, "file not found")
        elif _suffix(path) not in exts:
            yield Found(path, f"not a supported audio file ({path.suffix or 'no extension'})")
        else:
            yield Found(path)


def _walk_dir(
    folder: Path, exts: set[str], recursive: bool, seen: set[tuple[int, int]]
) -> Iterator[Found]:
    try:
        st = folder.stat()
    except OSError as exc:
        yield Found(folder, f"cannot read folder: {exc.strerror}")
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:  # a symlink loop or a folder reached twice
        return
    seen.add(key)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Found(folder, f"cannot read folder: {exc.strerror}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks; loops are caught by ``seen``
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if is_dir:
            if recursive:
                yield from _walk_dir(Path(entry.path), exts, recursive, seen)
        elif _suffix(Path(entry.name)) not in exts:
            continue
        elif is_file:
            yield Found(Path(entry.path))
        else:  # a music file's name on something that holds no music: say so
            yield Found(Path(entry.path), _not_a_file(Path(entry.path)))


def _not_a_file(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        try:
            return f"broken link (its target {os.readlink(path)} does not exist)"
        except OSError:
            return "broken link"
    return "not a regular file (a pipe, socket or device)"


def _suffix(path: Path) -> str:
    return path.suffix.lower()
