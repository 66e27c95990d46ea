"""How a bundle does on real commercial recordings: ``../shared/allmusic``, per kind.

Every clip goes through the real tagging path
(:func:`genrefy_tagger.listening.engine.analyse_paths`,
the bundle's window plan, calibration and default threshold). Per kind of the folder's
manifest, with the counts beside every rate:

* ``ten`` (one of the ten genres): the pick at ``--min-confidence 0`` per genre (recall);
* ``coarse`` (AllMusic says only "Pop/Rock"): a pick of pop, rock or metal is right;
* both together at the default threshold: how many are written, and how many of the
  written genres are right (the issue's "in-genre + Pop/Rock written / right");
* ``outside`` (none of the ten): how many get a genre written at all, and which.

A model that trained on any allmusic clip must not be measured here on those clips: its
figures come from artist-grouped cross-validation only (:func:`summarise` over the
out-of-fold decisions). :func:`measure` refuses such a bundle.

    .venv/bin/python bench/allmusic_figures.py [--model musicnn] [--jobs 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "genrefy_tagger" / "models"
sys.path.insert(0, str(ROOT))
from model_training.allmusic import (  # noqa: E402
    ALLMUSIC,
    RECALL4,
    manifest,
    summarise,
    trained_on_allmusic,
)

__all__ = ["ALLMUSIC", "RECALL4", "manifest", "measure", "summarise", "trained_on_allmusic"]


def measure(
    bundle: str | os.PathLike | None,
    jobs: int = 2,
    *,
    folder: Path = ALLMUSIC,
    min_confidence: float | None = None,
) -> dict[str, Any]:
    """:func:`summarise` for ``bundle`` (a folder, ``musicnn``, ``hybrid`` or None: default).

    Also returns the per-clip decisions under ``clips`` (id, kind, label, pick, confidence,
    unsure) so a later step can reuse them without tagging again.
    """
    sys.path.insert(0, str(ROOT))
    from genrefy_tagger.listening.engine import analyse_paths
    from genrefy_tagger.listening.model import resolve_bundle

    path = resolve_bundle(bundle)
    meta = json.loads((Path(path) / "bundle.json").read_text())
    if trained_on_allmusic(meta):
        raise ValueError(
            f"{path} trained on allmusic clips: its allmusic figures come from "
            "artist-grouped cross-validation only (metrics.allmusic_grouped_cv)"
        )
    rows = manifest(folder)
    got = list(analyse_paths([folder / r["path"] for r in rows], bundle_path=path, jobs=jobs,
                             min_confidence=min_confidence))  # fmt: skip
    decisions = [a.decision for a in got]
    out = summarise(rows, decisions)
    out["model_version"] = meta.get("model_version")
    out["min_confidence"] = meta.get("min_confidence") if min_confidence is None else min_confidence
    out["clips"] = [
        {"id": r["id"], "kind": r["kind"], "label": r["label"],
         "pick": d.genre if d else None, "confidence": d.confidence if d else None,
         "unsure": bool(d is None or d.unsure),
         "outside": d.outside if d else None}
        for r, d in zip(rows, decisions, strict=True)
    ]  # fmt: skip
    return out


def table_rows() -> list[tuple[str, Any]]:
    """Rows for the README model table (``bench/model_figures.py``): counts beside rates."""

    def frac(d: dict[str, Any], key: str, k: str = "k", n: str = "n") -> str:
        v = d.get("allmusic")
        if not v:
            return "–"
        x = v[key]
        return f"{x[k]}/{x[n]}"

    def picks(d: dict[str, Any]) -> str:
        v = d.get("allmusic")
        if not v:
            return "–"
        per = ", ".join(f"{g} {x['k']}/{x['n']}" for g, x in v["ten_pick_recall"].items())
        m = v["mean_recall_country_hiphop_jazz_reggae"]
        return f"{per}; mean over country, hip-hop, jazz, reggae {m:.3f}"

    def written(d: dict[str, Any]) -> str:
        v = d.get("allmusic")
        if not v:
            return "–"
        x = v["ten_and_coarse_at_threshold"]
        p = "–" if x["precision"] is None else f"{x['precision']:.3f}"
        cv = " (artist-grouped CV)" if "method" in v else ""
        shown = f"{x['written']}/{x['n']} written ({x['coverage']:.3f}), {x['right']} right ({p})"
        return shown + cv

    def outside(d: dict[str, Any]) -> str:
        v = d.get("allmusic")
        if not v:
            return "–"
        x = v["outside_written"]
        cv = " (artist-grouped CV)" if "method" in v else ""
        return f"{x['k']}/{x['n']} ({x['rate']:.3f}){cv}"

    return [
        ("allmusic, 64 in-genre clips: picks right per genre", picks),
        ("allmusic, 40 Pop/Rock clips: picked as pop, rock or metal",
         lambda d: frac(d, "coarse_pick_pop_rock_metal")),
        ("allmusic in-genre + Pop/Rock at the default threshold: written / right", written),
        ("allmusic, 78 clips outside the ten: a genre written", outside),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="musicnn, hybrid or a bundle folder")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    result = measure(args.model, args.jobs, min_confidence=args.min_confidence)
    shown = {k: v for k, v in result.items() if k != "clips"}
    print(json.dumps(shown, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
