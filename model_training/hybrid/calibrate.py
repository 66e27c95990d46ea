"""Calibrate an exported hybrid bundle: its temperature and its threshold, from validation clips.

The run's early-stopping clips (``plan.json``'s ``valid``; never a test clip) are
tagged through the tagger itself (:class:`genrefy_tagger.listening.engine.Analyzer` on the
exported bundle: its window plan, level rule and LiteRT network), their window
probabilities pooled with the bundle's vote rule, and then
:func:`model_training.calibration.calibration_report` fits the temperature that
makes confidence mean probability and picks the lowest threshold whose kept
tracks are at least 95 % right. Both go into ``bundle.json``; the reliability
diagrams into ``report/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import calibration_report


def calibrate_bundle(folder: str | os.PathLike, run: str | os.PathLike) -> dict[str, Any]:
    """Fit and store ``folder``'s calibration from ``run``'s early-stopping clips."""
    from genrefy_tagger.listening.engine import Analyzer
    from genrefy_tagger.listening.model import load_bundle, write_bundle_json
    from genrefy_tagger.listening.vote import combine

    from ..dataset import discover

    folder, run = Path(folder), Path(run)
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    clips = {c.track_id: c for c in discover(plan["data"], check_audio=False).clips}
    valid = [clips[t] for t in plan["plan"]["valid"]]
    bundle = load_bundle(folder)
    analyzer = Analyzer(bundle, min_confidence=0.0)
    probs, labels = [], []
    for clip in valid:
        analysis = analyzer.analyse(clip.path)
        if analysis.error is not None or analysis.probabilities is None:
            raise RuntimeError(f"cannot analyse validation clip {clip.path}: {analysis.error}")
        probs.append(combine(analysis.probabilities, rule=bundle.vote))
        labels.append(bundle.genres.index(clip.genre))
    title = f"{len(valid)} early-stopping clips through the tagger"
    result = calibration_report(
        np.stack(probs), np.asarray(labels), folder / "report", "valid", title
    )
    threshold = result["threshold"]
    meta = {k: v for k, v in bundle.meta.items() if not k.startswith("format")}
    meta["min_confidence"] = threshold["threshold"]
    meta["abstain"] = {
        "rule": "lowest threshold whose kept validation tracks are >= 95 % right",
        "abstain_rate": round(1.0 - threshold["coverage"], 4),
        "kept_accuracy": round(threshold["precision"], 4),
    }
    meta["calibration"] = {
        "method": (
            "temperature scaling of the pooled probabilities "
            "(genrefy_tagger.listening.vote.calibrate)"
        ),
        **{k: result[k] for k in ("temperature", "fitted_on", "ece_raw", "ece_calibrated")},
        "threshold_rule": meta["abstain"]["rule"],
        "threshold_choice": threshold,
    }
    write_bundle_json(folder, meta)
    return meta["calibration"]
