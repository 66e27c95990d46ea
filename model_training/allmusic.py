"""``../shared/allmusic``: 182 real commercial previews with AllMusic genres, per kind.

What the figures of a bundle on them are (:func:`summarise`), shared by
``bench/allmusic_figures.py`` (a bundle that never saw these clips, through the tagger) and
``model_training/musicnn/outside.py`` (artist-grouped cross-validation, for a bundle that
trained on some of them).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ALLMUSIC = Path(
    os.environ.get("GENREFY_ALLMUSIC", Path(__file__).resolve().parents[2] / "shared" / "allmusic")
)
# The four in-genre labels with more than three clips: the pick-recall target.
RECALL4 = ("country", "hiphop", "jazz", "reggae")


def manifest(folder: Path = ALLMUSIC) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def trained_on_allmusic(meta: dict[str, Any]) -> bool:
    """Does the bundle say it trained on allmusic clips (``training_data.allmusic``)?"""
    return "allmusic" in (meta.get("training_data") or {})


def _right(row: dict[str, str], genre: str | None) -> bool:
    return genre is not None and genre in row["label"].split("|")


def _rate(k: int, n: int) -> dict[str, float | int | None]:
    return {"n": n, "k": k, "rate": (k / n) if n else None}


def summarise(rows: Sequence[dict[str, str]], decisions: Sequence[Any]) -> dict[str, Any]:
    """Figures per kind from one decision per manifest row (None: nothing heard).

    ``decisions`` need ``genre`` (the pick at ``--min-confidence 0``) and ``unsure``
    (below the default threshold, or abstained): :class:`genrefy_tagger.listening.vote.Decision`.
    """
    out: dict[str, Any] = {"n": len(rows)}
    pairs = list(zip(rows, decisions, strict=True))
    ten = [(r, d) for r, d in pairs if r["kind"] == "ten"]
    per_genre = {}
    for g in sorted({r["label"] for r, _ in ten}):
        these = [(r, d) for r, d in ten if r["label"] == g]
        per_genre[g] = _rate(sum(d is not None and d.genre == g for _, d in these), len(these))
    out["ten_pick_recall"] = per_genre
    recalls = [per_genre[g]["rate"] for g in RECALL4 if g in per_genre]
    out["mean_recall_country_hiphop_jazz_reggae"] = sum(recalls) / len(recalls) if recalls else None
    coarse = [(r, d) for r, d in pairs if r["kind"] == "coarse"]
    out["coarse_pick_pop_rock_metal"] = _rate(
        sum(d is not None and _right(r, d.genre) for r, d in coarse), len(coarse)
    )
    for name, group in (("ten", ten), ("coarse", coarse), ("ten_and_coarse", ten + coarse)):
        written = [(r, d) for r, d in group if d is not None and not d.unsure]
        right = sum(_right(r, d.genre) for r, d in written)
        out[f"{name}_at_threshold"] = {
            "n": len(group),
            "written": len(written),
            "coverage": len(written) / len(group) if group else None,
            "right": right,
            "precision": right / len(written) if written else None,
            "wrong": sorted(f"{r['id']} {r['label']} -> {d.genre}"
                            for r, d in written if not _right(r, d.genre)),
        }  # fmt: skip
    outside = [(r, d) for r, d in pairs if r["kind"] == "outside"]
    written = [(r, d) for r, d in outside if d is not None and not d.unsure]
    out["outside_written"] = {
        **_rate(len(written), len(outside)),
        "genres": dict(Counter(d.genre for _, d in written).most_common()),
    }
    return out
