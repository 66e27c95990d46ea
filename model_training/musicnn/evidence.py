"""The evidence the outside rule is fitted on: each clip through the tagger itself.

:func:`genrefy_tagger.listening.engine.analyse_paths` at ``--min-confidence 0`` (no rule
applied): the clip's mean MSD tag scores, its calibrated pooled genre scores, the pick and
its confidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def evidence(bundle: Path, rows: list[dict[str, str]], jobs: int) -> dict[str, np.ndarray]:
    """Per clip, through the tagger: mean MSD tags, pooled scores, the pick and its confidence."""
    from genrefy_tagger.listening.engine import analyse_paths
    from genrefy_tagger.listening.model import load_bundle

    genres = load_bundle(bundle).genres
    tags, pooled, picks = [], [], []
    for a in analyse_paths([r["path"] for r in rows], bundle_path=bundle, min_confidence=0.0,
                           jobs=jobs):  # fmt: skip
        if a.decision is None or a.tags is None:
            raise RuntimeError(f"{a.path}: no decision ({a.error or a.note})")
        scores = dict(a.decision.ranked)
        tags.append(np.asarray(a.tags, np.float64))
        pooled.append([scores[g] for g in genres])
        picks.append(a.decision.genre)
    pooled_ = np.asarray(pooled)
    return {"tags": np.stack(tags), "pooled": pooled_, "conf": pooled_.max(1),
            "pick": np.asarray(picks)}  # fmt: skip
