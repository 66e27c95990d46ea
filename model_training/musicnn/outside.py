"""Fit the musicnn bundle's outside-the-genres rule and choose its thresholds on a real mix.

Evidence: every clip of a validation mix through the tagger itself
(:func:`genrefy_tagger.listening.engine.analyse_paths` at ``--min-confidence 0``, which applies no
rule): its mean MSD tag scores and calibrated pooled genre scores. The mix is the shared
GTZAN ff-valid clips (never trained on by the head) and the 182 ``../shared/allmusic``
previews (78 outside the ten genres). ff-test is never read.

* Scores: a standardised L2 logistic regression, outside vs inside, on
  :func:`genrefy_tagger.listening.outside.features`; every clip's score out of fold
  (5 folds grouped by artist: no artist on both sides).
* Thresholds: the genre threshold ``min_confidence`` and the rule's ``threshold``
  together: the pair writing the most in-genre clips of the mix while >= 95 % of every
  genre written on the mix is right (a genre written on an outside clip counts as wrong)
  and at most 10 % of the outside clips get one.
* Honest allmusic figures (the bundle trains on those clips): nested, per artist fold the
  thresholds are chosen without it and applied to it (:func:`model_training.allmusic.summarise`).
* Shipped: the regression refitted on the whole mix, with the thresholds chosen on it.
* A head that trained on allmusic previews (``musicnn-retrain --with-allmusic``): their
  evidence comes from the artist-grouped fold heads that command saved, never from the
  head that heard them (:mod:`model_training.musicnn.allmusic_head`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.listening.outside import OutsideRule, features
from genrefy_tagger.listening.vote import Decision
from model_training.musicnn.network import MSD_TAGS

from ..allmusic import ALLMUSIC, manifest, summarise
from ..artists import read_artists
from .evidence import evidence

TARGET_PRECISION = 0.95
MAX_OUTSIDE = 0.10
C = 0.1  # L2 strength, from artist-grouped CV on the mix (0.01 / 0.1 / 1: AUC 0.75-0.76)
FOLDS = 5
T_GRID = np.round(np.arange(0.50, 0.96, 0.01), 2)
TAU_GRID = np.round(np.arange(0.05, 1.001, 0.01), 2)


def mix_rows(gtzan: Path, allmusic: Path = ALLMUSIC) -> list[dict[str, str]]:
    """GTZAN ff-valid + allmusic: id, path, kind (ten/coarse/outside), label, artist group."""
    import csv

    artists = read_artists()
    with open(gtzan / "manifest.csv", newline="", encoding="utf-8") as f:
        valid = [r for r in csv.DictReader(f) if r["fault_filtered_split"] == "valid"]
    rows = [
        {"id": r["track_id"], "path": str(gtzan / r["path"]), "kind": "ten", "label": r["genre"],
         "group": artists.get(r["track_id"], r["track_id"]).casefold(), "source": "gtzan"}
        for r in valid
    ]  # fmt: skip
    rows += [
        {"id": r["id"], "path": str(allmusic / r["path"]), "kind": r["kind"], "label": r["label"],
         "group": r["artist"].casefold(), "source": "allmusic", "artist": r["artist"]}
        for r in manifest(allmusic)
    ]  # fmt: skip
    return rows


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardisation and logistic regression: mean, scale, coef, intercept."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
    model.fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Every clip's score from a regression fitted on the other artists' clips."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        mean, scale, coef, b = fit(x[train], y[train])
        scores[test] = 1 / (1 + np.exp(-(((x[test] - mean) / scale) @ coef + b)))
    return scores


def choose(conf: np.ndarray, score: np.ndarray, kind: np.ndarray, right: np.ndarray) -> dict:
    """The (min_confidence, threshold) pair of the module docstring's rule, and its figures."""
    inside, outside = kind != "outside", kind == "outside"
    best: dict[str, Any] | None = None
    for t in T_GRID:
        for tau in TAU_GRID:
            written = (conf >= t) & (score < tau)
            n_written = int(written.sum())
            if n_written == 0:
                continue
            precision = float((written & right).sum() / n_written)
            out_share = float((written & outside).sum() / max(outside.sum(), 1))
            if precision < TARGET_PRECISION or out_share > MAX_OUTSIDE:
                continue
            key = (int((written & inside).sum()), -out_share, float(t))
            if best is None or key > best["key"]:
                best = {"key": key, "min_confidence": float(t), "threshold": float(tau),
                        "written": n_written, "precision": precision,
                        "coverage_inside": key[0] / int(inside.sum()),
                        "outside_written": out_share, "n": len(conf)}  # fmt: skip
    if best is None:
        raise RuntimeError("no threshold pair reaches the target on the validation mix")
    best.pop("key")
    return best


def fit_outside(bundle: Path, gtzan: Path, *, jobs: int = 2, log: Callable = print) -> dict:
    """Fit, choose, measure (nested, grouped) and write the rule into ``bundle``."""
    from genrefy_tagger.listening.model import load_bundle, write_bundle_json

    from .allmusic_head import out_of_fold_evidence

    meta = json.loads((bundle / "bundle.json").read_text())
    meta.pop("outside", None)  # the evidence is gathered without the old rule
    rows = mix_rows(gtzan)
    ev = evidence(bundle, rows, jobs)
    oof = out_of_fold_evidence(bundle)
    if oof is not None:  # the head heard these clips: use heads that did not
        genres = load_bundle(bundle).genres
        for i, r in enumerate(rows):
            if r["id"] in oof:
                ev["tags"][i], ev["pooled"][i] = oof[r["id"]]
        ev["conf"] = ev["pooled"].max(1)
        ev["pick"] = np.asarray([genres[int(k)] for k in ev["pooled"].argmax(1)])
        log(f"{sum(r['id'] in oof for r in rows)} allmusic clips judged by out-of-fold heads")
    kind = np.array([r["kind"] for r in rows])
    right = np.array([p in r["label"].split("|") for p, r in zip(ev["pick"], rows, strict=True)])
    y = (kind == "outside").astype(int)
    x = features(ev["tags"], ev["pooled"])
    groups = np.array([r["group"] for r in rows])
    score = out_of_fold(x, y, groups)
    chosen = choose(ev["conf"], score, kind, right)
    log(f"chosen on the mix ({len(rows)} clips, out-of-fold scores): {chosen}")

    # Nested: each allmusic artist fold judged with thresholds chosen without it.
    from sklearn.model_selection import GroupKFold

    am = np.array([r["source"] == "allmusic" for r in rows])
    am_idx = np.where(am)[0]
    written = np.zeros(len(rows), bool)
    per_fold = []
    for _, held in GroupKFold(n_splits=FOLDS).split(am_idx, y[am_idx], groups[am_idx]):
        held = am_idx[held]
        keep = np.ones(len(rows), bool)
        keep[held] = False
        c = choose(ev["conf"][keep], score[keep], kind[keep], right[keep])
        per_fold.append({k: c[k] for k in ("min_confidence", "threshold")})
        written[held] = (ev["conf"][held] >= c["min_confidence"]) & (score[held] < c["threshold"])
    picks = zip(ev["pick"][am], ev["conf"][am], written[am], strict=True)
    decisions = [Decision(((p, float(c)),), 1.0, 1, not w, "") for p, c, w in picks]
    cv = summarise([r for r in rows if r["source"] == "allmusic"], decisions)
    cv["method"] = (f"every clip scored by a rule fitted without its artist ({FOLDS} grouped "
                    f"folds); per artist-grouped fold of allmusic ({FOLDS}) both thresholds chosen "
                    "without that fold (GTZAN ff-valid in every choice), then applied to it; "
                    "picks and scores through the tagger")  # fmt: skip
    cv["thresholds_per_fold"] = per_fold
    log(f"allmusic, nested artist-grouped CV: {json.dumps(cv)}")

    mean, scale, coef, b = fit(x, y)
    rule = OutsideRule(MSD_TAGS, mean, scale, coef, b, chosen["threshold"], {})
    meta["outside"] = rule.to_meta(
        method="logistic regression (C=0.1, balanced) on log mean MSD tag scores + log pooled "
               # fmt: skip
               "genre scores (genrefy_tagger.listening.outside.features), standardised",
        fitted_on=f"{int(y.sum())} allmusic clips outside the ten vs {int((1 - y).sum())} inside "
                  "(GTZAN ff-valid + allmusic in-genre and Pop/Rock)",  # fmt: skip
        threshold_rule=(f"with min_confidence: most in-genre clips of the mix written while >= "
                        f"{TARGET_PRECISION:.0%} of written genres are right and <= "
                        f"{MAX_OUTSIDE:.0%} of outside clips get one (out-of-fold scores)"),
        threshold_choice=chosen,
    )  # fmt: skip
    meta["min_confidence"] = chosen["min_confidence"]
    meta.get("calibration", {})["threshold_superseded_by"] = "outside.threshold_choice"
    meta["model_version"] = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d.%H%M")
    meta.setdefault("training_data", {})["allmusic"] = (
        "the outside rule and both thresholds are fitted on all 182 ../shared/allmusic clips "
        "(with GTZAN ff-valid): allmusic figures come from artist-grouped CV only"
    )
    meta.setdefault("metrics", {})["allmusic_grouped_cv"] = cv
    meta["metrics"].pop("figures", None)  # stale: bench/model_figures.py --write re-measures
    write_bundle_json(bundle, meta)
    return {"chosen": chosen, "allmusic_grouped_cv": cv}
