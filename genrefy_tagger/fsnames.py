"""File names that are not valid UTF-8: how they are kept, written down and shown.

A Linux file name is bytes, any bytes but ``/`` and NUL; old Latin-1 rips and Samba
mounts give names like ``b"caf\\xe9.mp3"``. Python hands such a name out as a str with
surrogate escapes (PEP 383: byte 0xE9 becomes ``"\\udce9"``), and genrefy keeps it so
in memory (``Path``, ``str``): ``open``, ``os.stat``, mutagen and PyAV turn it back
into the same bytes. What such a str cannot do is become UTF-8, so every place where
a path leaves the process picks one of two forms, and only these:

**Read back, so lossless** — the exact bytes must come back:

- JSON (the journal, the JSON plan, the review page's data): :func:`json_text`. Each
  escaped byte becomes the standard JSON escape ``\\udce9``; everything else stays as
  it is (``é`` is not escaped, so journals and plans stay readable). ``json.loads``
  gives back the same str, hence the same bytes; so do JavaScript's ``JSON.parse`` and
  ``JSON.stringify`` (ES2019 writes a lone surrogate as that escape), so the plan the
  review page downloads keeps the name. The file stays valid UTF-8 (and JSON). A
  separate base64 field was not chosen: every reader, and every person editing a
  plan, would have to know which of two fields is the truth. The one caveat: a tool
  that is not Python or JavaScript may read the escape as U+FFFD (``jq`` does).
- CSV (a plan too, ``--apply`` reads it): the name's own bytes, written and read with
  ``errors="surrogateescape"`` (:data:`LOSSLESS`). CSV has no escape syntax, and those
  bytes are what the file system holds, as ``ls > list`` would write them. A report
  of a library with only UTF-8 names is plain UTF-8 as before; one with such names
  is not, and tools that insist on UTF-8 must be told (pandas:
  ``encoding_errors="surrogateescape"``); spreadsheets show U+FFFD.
- The analysis cache's SQLite key: :func:`sqlite_key`, the name's bytes. A valid
  name is bound as TEXT (SQLite keeps TEXT as UTF-8, so those are its bytes, and
  the keys of earlier versions stay valid), any other as a BLOB of
  ``os.fsencode`` bytes: the two sets of names never meet, so one file has one key.
- libsndfile: ``os.fsencode(path)``; its binding encodes a str strictly.

**Only shown, so readable and never raising** — the console, the error log, the
review page's visible text: :func:`shown`. Each byte that is not UTF-8 is written
``\\xe9``, as Python's ``repr`` and ``ls -b`` do, rather than U+FFFD, so that two
names differing only in such bytes stay apart and the user can find the file. A name
placed in a one-line message goes through :func:`shown_name`, which also writes
control characters as escapes (``\\n``, ``\\x1b``): a name holding a newline
would otherwise split its line in two, and one holding an escape sequence could
recolour or rewrite the user's terminal.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: The codec error handler that reads and writes a name's bytes as they are.
LOSSLESS = "surrogateescape"


def shown(text: str | bytes | os.PathLike) -> str:
    """``text`` (a path, or a line holding one) as printable text; never raises.

    Bytes that are not UTF-8 become ``\\xNN``; any other text is returned unchanged.
    """
    data = text if isinstance(text, bytes) else os.fspath(text)
    if isinstance(data, str):
        try:
            data = data.encode("utf-8", LOSSLESS)
        except UnicodeEncodeError:  # a lone surrogate that no byte stands for
            return data.encode("utf-8", "backslashreplace").decode("utf-8")
    return data.decode("utf-8", "backslashreplace")


def shown_name(name: str | bytes | os.PathLike) -> str:
    """A file name as :func:`shown` writes it, with control characters escaped too.

    C0 and C1 controls and DEL become ``\\n``, ``\\r``, ``\\t`` or ``\\xNN``, as
    ``ls -b`` writes them. Lossy (a backslash of the name itself is not doubled): for
    showing only, never for reading back.
    """
    text = shown(name)
    if text.isprintable():
        return text
    return "".join(_CONTROL_ESCAPES.get(c, c) for c in text)


_CONTROL_ESCAPES = {
    chr(c): {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}.get(c, f"\\x{c:02x}")
    for c in (*range(0x20), *range(0x7F, 0xA0))
}


def json_text(data: Any, **options: Any) -> str:
    """``json.dumps(data, ensure_ascii=False, **options)``, each escaped byte as ``\\udcNN``.

    JSON output holds such characters only inside string literals, where encoding
    with ``backslashreplace`` writes exactly JSON's ``\\uXXXX`` escape for them (a
    backslash of the text itself was already doubled by ``json.dumps``).
    """
    text = json.dumps(data, ensure_ascii=False, **options)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (holds no surrogate escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sqlite_key(path: str | os.PathLike) -> str | bytes:
    """The absolute name as an SQLite key: str when valid UTF-8, else its bytes."""
    name = os.path.abspath(path)
    return name if is_utf8(name) else os.fsencode(name)
