"""The file-safety half of tag writing: atomic replacement and audio fingerprints.

``replace_atomically`` is the only code in genrefy that writes into a user's music
file, and it never writes into the file itself: it copies the file to a hidden
temporary file in the same folder (``.<name>.genrefy-<pid>-<random>.tmp``), lets the
caller edit and verify that copy, checks that every decoder that read the file
reads the copy the same (``decoders.py``), fsyncs it and renames it over the
original with ``os.replace``. A crash, a full disk or any exception at any step
leaves the original byte-identical and removes the copy; a copy left by a killed
process (``kill -9``, power cut) is removed by ``remove_stale_temps`` on the next run.

What survives the replacement: the permission bits (``shutil.copymode``), every
extended attribute (ACLs, Finder tags and SELinux labels among them; one that
cannot be copied refuses the write) and, when running as root, the owner and group.
A file with several hard links is never split silently: ``hard_links="skip"`` (the
default) leaves it unchanged with the reason, ``"in-place"`` copies the verified
copy's bytes back into the same inode (every name sees the new tags; not atomic,
so the old bytes are written back if the result does not read back exactly), and
``"break"`` renames as usual, so this name gets a new inode and the other names keep
the old bytes. Modification time: by default it becomes "now", because the content
changed and beets, rsync and sync tools rely on mtime to notice that;
``keep_mtime=True`` restores the original access and modification times.

``audio_fingerprint`` hashes the audio payload bytes where the container locates
them (``payload.py``) and otherwise the decoded samples, so a tag write can prove
that it did not touch the audio.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from .decoders import difference, probe
from .payload import payload_hash

#: Longest part of the original name kept in the temporary name, in bytes: the
#: decorations add about 25 bytes and most file systems stop at 255.
_MAX_NAME_BYTES = 200
_BLOCK_FRAMES = 1 << 16

#: What to do with a file that has more than one hard link (see the module docstring).
HARD_LINKS = ("skip", "in-place", "break")


class TagError(Exception):
    """A file whose tags cannot be read or written; the message is a one-line reason."""


class LeftAlone(TagError):
    """A file left unchanged on purpose: read-only, hard-linked under ``--hard-links skip``,
    or MPEG audio no tag can be added to without moving a decoder's length estimate.

    A tagging run reports it as skipped, not failed; an undo still fails on it.
    """


def resolve_target(path: str | os.PathLike) -> tuple[Path, os.stat_result]:
    """The real file behind ``path`` (symlinks followed) and its stat, or TagError."""
    real = Path(os.path.realpath(path))
    try:
        st = real.stat()
    except FileNotFoundError:
        raise TagError("file not found (moved or deleted?)") from None
    except OSError as exc:
        raise TagError(f"cannot access file: {short_reason(exc)}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file")
    if st.st_size == 0:
        raise TagError("empty file (0 bytes)")
    return real, st


def left_alone(st: os.stat_result, hard_links: str) -> str | None:
    """Why a file with this stat is not written under ``hard_links``, or None."""
    # Root bypasses permission bits (os.access says yes), so the mode is the signal.
    if st.st_mode & 0o222 == 0:
        return "read-only file, left unchanged"
    return _hard_link_reason(st, hard_links)


def refuse_read_only(st: os.stat_result) -> None:
    """LeftAlone for a file with no write bit for anyone."""
    if st.st_mode & 0o222 == 0:
        raise LeftAlone("read-only file, left unchanged")


def replace_atomically(
    path: Path,
    original: os.stat_result,
    edit: Callable[[Path], None],
    check: Callable[[Path], None] | None,
    *,
    keep_mtime: bool,
    hard_links: str = "skip",
    before_replace: Callable[[Path], None] | None = None,
    copy: bool = True,
) -> None:
    """Copy ``path``, ``edit`` the copy, fsync it, ``check`` it, then swap it in.

    ``path`` must already be resolved (see ``resolve_target``) and ``original`` is
    its stat from before anything was read, used both to restore metadata and to
    notice a file that someone else changed while we worked on it. ``before_replace``
    gets the finished, verified copy just before it replaces the original (the
    journal records the change there). ``copy=False``: ``edit`` writes the whole
    content itself (an undo's original bytes), so the file is not copied first.
    """
    refuse_read_only(original)
    refuse_hard_links(original, hard_links)
    tmp = _make_temp(path)
    try:
        decoders = probe(path)
        if copy:
            _copy_contents(path, tmp)
        edit(tmp)
        if check is not None:
            check(tmp)
        changed = difference(decoders, tmp)
        if changed is not None:
            raise TagError(f"{changed}, left unchanged")
        _copy_metadata(original, path, tmp, keep_mtime=keep_mtime)
        _fsync_path(tmp)
        _ensure_unchanged(path, original)
        if before_replace is not None:
            before_replace(tmp)
        if original.st_nlink > 1 and hard_links == "in-place":
            _write_in_place(tmp, path, original, keep_mtime=keep_mtime)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise TagError("disk full while writing the tags, left unchanged") from exc
        if isinstance(exc, OSError):  # still a one-line reason
            raise TagError(f"cannot write the file: {short_reason(exc)}") from exc
        raise
    _fsync_dir(path.parent)


def refuse_hard_links(st: os.stat_result, hard_links: str) -> None:
    """LeftAlone for a file with several hard links when the policy is to skip it."""
    reason = _hard_link_reason(st, hard_links)
    if reason:
        raise LeftAlone(reason)


def _hard_link_reason(st: os.stat_result, hard_links: str) -> str | None:
    if hard_links not in HARD_LINKS:
        raise ValueError(f"hard_links must be one of {HARD_LINKS}, not {hard_links!r}")
    if st.st_nlink > 1 and hard_links == "skip":
        return (
            f"has {st.st_nlink} hard links, left unchanged; "
            "--hard-links in-place writes every name, break splits this one off"
        )
    return None


def prepare_links(path: Path, hard_links: str) -> str | None:
    """For a writer that writes in place (beets): None when ``path`` may be written now,
    after giving this name its own copy under ``"break"``; else why it is left alone."""
    real, st = resolve_target(path)
    if st.st_nlink < 2 or hard_links == "in-place":
        return None
    if hard_links == "break":
        replace_atomically(real, st, lambda tmp: None, None, keep_mtime=True, hard_links="break")
        return None
    return f"has {st.st_nlink} hard links, left unchanged (hard_links: in-place or break)"


def _write_in_place(tmp: Path, path: Path, original: os.stat_result, *, keep_mtime: bool) -> None:
    """Copy the verified ``tmp`` into ``path``'s own inode, so every hard link sees it."""
    new = tmp.read_bytes()
    with open(path, "r+b") as f:
        old = f.read()
        try:
            _overwrite(f, new)
            f.seek(0)
            if f.read() != new:
                raise TagError("the in-place write did not read back; original bytes put back")
        except BaseException:
            _overwrite(f, old)
            raise
    if keep_mtime:
        os.utime(path, ns=(original.st_atime_ns, original.st_mtime_ns))


def _overwrite(f: BinaryIO, data: bytes) -> None:
    f.seek(0)
    f.write(data)
    f.truncate()
    f.flush()
    os.fsync(f.fileno())


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary copies that a killed genrefy left in ``folder``; return them.

    A copy is stale when the process named in it (``.<name>.genrefy-<pid>-<random>.tmp``)
    is gone: a ``kill -9`` or a power cut between the copy and the rename. The
    original beside it is whole either way (the rename is atomic), so deleting the
    copy loses nothing. Copies of a live process are left alone.
    """
    removed = []
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if _TEMP_NAME.match(e.name)]
    except OSError:
        return removed
    for name in names:
        pid = int(_TEMP_NAME.match(name).group(1))  # type: ignore[union-attr]
        if pid == os.getpid() or _alive(pid):
            continue
        with suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(Path(folder) / name)
    return removed


_TEMP_NAME = re.compile(r"^\..*\.genrefy-(\d+)-[^.]*\.tmp$", re.DOTALL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def _make_temp(path: Path) -> Path:
    name = path.name
    while len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        name = name[:-1]
    prefix = f".{name}.genrefy-{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TagError(
            f"cannot create a temporary copy in its folder: {short_reason(exc)}"
        ) from exc
    os.close(fd)
    return Path(tmp)


def _copy_contents(src: Path, dst: Path) -> None:
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            # No fsync here: the finished copy is fsynced once, just before the rename.
            shutil.copyfileobj(fin, fout, 1 << 20)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise TagError("disk full: no room for the temporary copy, left unchanged") from exc
        raise TagError(f"cannot copy the file: {short_reason(exc)}") from exc


def _copy_metadata(original: os.stat_result, path: Path, tmp: Path, *, keep_mtime: bool) -> None:
    if getattr(os, "geteuid", lambda: -1)() == 0:
        # chown first: it clears set-id bits, which copymode then puts back.
        with suppress(OSError):
            os.chown(tmp, original.st_uid, original.st_gid)
    shutil.copymode(path, tmp)
    _copy_xattrs(path, tmp)
    if keep_mtime:
        os.utime(tmp, ns=(original.st_atime_ns, original.st_mtime_ns))


def _copy_xattrs(path: Path, tmp: Path) -> None:
    """Every extended attribute of ``path`` onto ``tmp``; TagError for one that cannot be."""
    if not hasattr(os, "listxattr"):  # not Linux: nothing this module can copy
        return
    try:
        names = os.listxattr(path)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return  # the file system has none
        raise TagError(f"cannot read its extended attributes: {short_reason(exc)}") from exc
    for name in names:
        try:
            os.setxattr(tmp, name, os.getxattr(path, name))
        except OSError as exc:
            raise TagError(
                f"cannot keep its extended attribute {name}: {short_reason(exc)}, left unchanged"
            ) from exc


def _ensure_unchanged(path: Path, original: os.stat_result) -> None:
    try:
        now = path.stat()
    except FileNotFoundError:
        raise TagError("file not found (moved or deleted?)") from None
    before = (original.st_ino, original.st_size, original.st_mtime_ns)
    if (now.st_ino, now.st_size, now.st_mtime_ns) != before:
        raise TagError("file changed while it was being tagged, left unchanged")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename durable; some file systems cannot fsync a directory.
    with suppress(OSError):
        _fsync_path(folder)


def audio_fingerprint(path: Path, method: str | None = None) -> tuple[str, str]:
    """(method, sha256) of the audio in ``path``: its payload bytes, or its decoded samples.

    Where the container shows where the audio is (``payload.py``), its bytes are
    hashed; otherwise every sample PyAV (then libsndfile) decodes, exactly as many as
    the decoder returns: never padding, never an estimated length. Pass the method
    that fingerprinted the original to fingerprint its copy the same way. Raises
    TagError when neither works.
    """
    if method is None or method not in _DECODERS:
        found = payload_hash(path)
        if found is not None and method in (None, found[0]):
            return found
        if method is not None:
            raise TagError(f"the audio is no longer laid out as {method}")
    errors = []
    for name, fingerprint in _DECODERS.items():
        if method not in (None, name):
            continue
        try:
            return name, fingerprint(path)
        except Exception as exc:  # decoders raise many error types; all mean "cannot decode"
            errors.append(short_reason(exc))
    raise TagError(f"cannot decode the audio to verify it ({errors[0]})")


def _pyav_hash(path: Path) -> str:
    import av

    digest = hashlib.sha256()
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            digest.update(f"{frame.format.name}/{frame.sample_rate}/{frame.samples}".encode())
            digest.update(frame.to_ndarray().tobytes())
    return digest.hexdigest()


def _soundfile_hash(path: Path) -> str:
    import soundfile as sf

    from ..reading.audio import quiet_decoder

    digest = hashlib.sha256()
    with quiet_decoder(), sf.SoundFile(os.fsencode(path)) as f:
        digest.update(f"{f.samplerate}/{f.channels}".encode())
        while True:
            # read() returns only what was decoded (blocks() would pad to the
            # estimated length); float64 holds every integer PCM sample exactly.
            block = f.read(_BLOCK_FRAMES, dtype="float64", always_2d=True)
            if not len(block):
                break
            digest.update(block.tobytes())
    return digest.hexdigest()


_DECODERS: dict[str, Callable[[Path], str]] = {"pyav": _pyav_hash, "soundfile": _soundfile_hash}


def short_reason(exc: BaseException) -> str:
    """The first line of an exception's message, without file paths, for a one-line reason."""
    strerror = getattr(exc, "strerror", None)  # OSError and FFmpeg's errors
    if isinstance(strerror, str) and strerror.strip():
        return strerror.strip()
    # libsndfile's message without "Error opening '<path>': "
    text = (getattr(exc, "error_string", None) or str(exc)).strip()
    text = _QUOTED_PATH.sub("", text.splitlines()[0] if text else "").strip(" :")
    return text[:160] if text else type(exc).__name__


#: A quoted absolute path inside a message (the user sees the path in the row already).
_QUOTED_PATH = re.compile(r"(?::\s*)?'(?:/|[A-Za-z]:\\)[^']*'")
