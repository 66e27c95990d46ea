"""The report as a Parquet table (``--report FILE.parquet``), for catalogues of millions of files.

One row per file: the path (and its bytes, for a name that is not UTF-8), the action and
its reason, current and proposed genres, confidence, agreement, the full probability
vector (in the order of the ``genres`` recorded in the file's metadata, with the rest of
the run's settings), the model and the file's identity. Rows are streamed: at most
``rows_per_group`` are held in memory.

Checkpoints: until the run completes, rows go to numbered part files in
``FILE.parquet.partial/``, each a whole Parquet file closed as soon as its rows are
written (every ``rows_per_group`` rows, or ``flush_seconds``). A run that completes merges
them, row group by row group, into ``FILE.parquet`` and removes the folder. A run that is
interrupted (Ctrl-C, a killed driver) leaves them; the next run with the same report and
the same settings resumes: the files already in the parts get no new row and are not
analysed again (:attr:`ParquetReport.done`, 8 bytes per file). Different settings start over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..fsnames import is_utf8, json_text, shown
from ..isolation import describe
from .report import ReportError, Row

#: Settings a checkpoint must share with the run that resumes it ("created" differs).
_VOLATILE = ("created",)


def _schema(meta: dict[str, Any]) -> pa.Schema:
    fields = [
        ("path", pa.string()),
        ("path_bytes", pa.binary()),  # the name's bytes, where it is not UTF-8 (fsnames)
        ("action", pa.string()),
        ("reason", pa.string()),
        ("current", pa.list_(pa.string())),
        ("proposed", pa.list_(pa.string())),
        ("confidence", pa.float64()),
        ("agreement", pa.float64()),
        ("probabilities", pa.list_(pa.float64())),
        ("model", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.float64()),
        ("fingerprint", pa.string()),
    ]
    return pa.schema(fields, metadata={"genrefy": json_text(meta)})  # names: see fsnames


def path_key(path: str | os.PathLike) -> int:
    """A 64-bit digest of a file's absolute path: what the checkpoint remembers of it."""
    name = os.path.abspath(path).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "little")


class ParquetReport:
    """Writes rows as Parquet; same ``write``/``close`` as :class:`report.ReportWriter`."""

    def __init__(
        self,
        path: str | os.PathLike,
        meta: dict[str, Any] | None = None,
        *,
        rows_per_group: int = 10_000,
        flush_seconds: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.rows_per_group, self.flush_seconds = rows_per_group, flush_seconds
        self.schema = _schema(self.meta)
        self._genres: list[str] = list(self.meta.get("genres", []))
        self.parts = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._keys = self._resume()
        except OSError as exc:  # pyarrow's I/O errors are OSErrors too
            raise self._error(exc) from exc
        self.resumed = len(self._keys)
        self._buffer: list[dict[str, Any]] = []
        self._flushed = time.monotonic()
        self._count = self.resumed

    def _resume(self) -> np.ndarray:
        """Digests of the paths an interrupted run with these settings already reported."""
        parts = sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []
        if parts and not all(self._same_run(p) for p in parts):
            parts = []
        if not parts:
            shutil.rmtree(self.parts, ignore_errors=True)
            self.parts.mkdir(parents=True)
            return np.zeros(0, dtype=np.uint64)
        keys = []  # one array a part: 8 bytes a file, never a list of every path
        for part in parts:
            table = pq.read_table(part, columns=["path", "path_bytes"])
            shown_names = table.column("path").to_pylist()
            raw_names = table.column("path_bytes").to_pylist()
            names = [
                os.fsdecode(raw) if raw is not None else name
                for name, raw in zip(shown_names, raw_names, strict=True)
            ]
            keys.append(np.fromiter((path_key(p) for p in names), np.uint64, len(names)))
        return np.unique(np.concatenate(keys))

    def _same_run(self, part: Path) -> bool:
        try:
            stored = json.loads(pq.read_schema(part).metadata[b"genrefy"])
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
            return False  # e.g. a part cut short when the driver was killed: start over
        mine = {k: v for k, v in self.meta.items() if k not in _VOLATILE}
        return {k: v for k, v in stored.items() if k not in _VOLATILE} == mine

    def done(self, path: str | os.PathLike) -> bool:
        """True when a row for ``path`` is already in the checkpoint."""
        if not len(self._keys):
            return False
        key = np.uint64(path_key(path))
        i = int(np.searchsorted(self._keys, key))
        return i < len(self._keys) and self._keys[i] == key

    def write(self, row: Row) -> None:
        data = row.as_dict()
        name = data["path"]
        # Parquet strings are UTF-8: a name that is not keeps its bytes beside a readable form.
        data["path"], data["path_bytes"] = shown(name), None if is_utf8(name) else os.fsencode(name)
        data["reason"] = shown(data["reason"])
        scores = dict(row.scores)
        data["confidence"] = row.confidence  # unrounded, unlike the JSON plan
        data["agreement"] = row.agreement
        data["probabilities"] = [scores[g] for g in self._genres] if scores else None
        data["model"] = self.meta.get("model", "")
        del data["runners_up"]  # the probabilities hold them
        self._buffer.append(data)
        self._count += 1
        due = time.monotonic() - self._flushed >= self.flush_seconds
        if len(self._buffer) >= self.rows_per_group or due:
            self.flush()

    def _error(self, exc: OSError) -> ReportError:
        return ReportError(f"cannot write the report {self.path}: {describe(exc)}")

    def flush(self) -> None:
        """Write the buffered rows as the next part file (closed, so it survives a kill).

        A full disk or a read-only folder raises :class:`ReportError`; the parts already
        written stay, so a later run resumes from them.
        """
        self._flushed = time.monotonic()
        if not self._buffer:
            return
        try:
            self._write_part()
        except OSError as exc:
            raise self._error(exc) from exc
        self._buffer.clear()

    def _write_part(self) -> None:
        n = len(list(self.parts.glob("part-*.parquet")))
        final = self.parts / f"part-{n:06d}.parquet"
        temp = final.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema), temp)
        os.replace(temp, final)  # a part is whole or absent

    def close(self, complete: bool = True) -> None:
        """Flush; when the run ``complete``\\ d, merge the parts into the report."""
        self.flush()
        if not complete:
            return
        temp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with pq.ParquetWriter(temp, self.schema) as out:
                for part in sorted(self.parts.glob("part-*.parquet")):
                    source = pq.ParquetFile(part)
                    for i in range(source.num_row_groups):
                        out.write_table(source.read_row_group(i))
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._error(exc) from exc
        shutil.rmtree(self.parts, ignore_errors=True)

    @property
    def rows(self) -> int:
        return self._count

    def __enter__(self) -> ParquetReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(complete=exc[0] is None)
