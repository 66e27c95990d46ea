"""Retrain the musicnn head with real commercial recordings too, and keep its figures honest.

The head learns, besides GTZAN (:func:`model_training.musicnn.retrain.head_data`), the
104 ``../shared/allmusic`` previews in the ten genres or "Pop/Rock" (level-normalised, every
1-s patch, plus one production-style copy each: :mod:`model_training.musicnn.data`'s
``norm`` and ``aug0``). A Pop/Rock clip is labelled with the head-before's best of pop, rock
and metal (any of the three is right for it). The 78 previews outside the ten are not
trained on: the head has no class for them.

Because the shipped head has heard those clips, their figures come from heads that have
not: 5 folds grouped by artist; each fold's head (the shipped recipe, trained without that
fold) analyses the fold's clips through the tagger itself (its own LiteRT export and
temperature in a scratch copy of the bundle). Those out-of-fold tags and pooled scores are
saved (:data:`OOF_EVIDENCE`, keyed by the shipped head's digest) for
:func:`model_training.musicnn.outside.fit_outside`, which fits the outside rule and both
thresholds on them and measures the allmusic figures from them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.windows import WindowPolicy

from ..allmusic import ALLMUSIC, manifest
from .data import PORT_CACHE, two_output_frontend, variant_patches
from .evidence import evidence
from .fidelity import Taggrams

FOLDS = 5
OOF_EVIDENCE = PORT_CACHE / "allmusic_oof_evidence.npz"


def inside_rows(allmusic: Path = ALLMUSIC) -> list[dict[str, str]]:
    """The allmusic previews in the ten genres or Pop/Rock, with their artist group."""
    return [
        {
            "id": r["id"],
            "path": str(allmusic / r["path"]),
            "kind": r["kind"],
            "label": r["label"],
            "group": r["artist"].casefold(),
            "source": "allmusic",
        }
        for r in manifest(allmusic)
        if r["kind"] != "outside"
    ]


def head_digest(bundle: Path) -> str:
    return hashlib.sha256((bundle / "head.tflite").read_bytes()).hexdigest()


def labels_of(rows: list[dict[str, str]], pooled: np.ndarray) -> np.ndarray:
    """Genre index per row; a Pop/Rock clip takes the best of pop, rock and metal in ``pooled``."""
    out = []
    for r, p in zip(rows, pooled, strict=True):
        allowed = [GTZAN_GENRES.index(g) for g in r["label"].split("|")]
        out.append(allowed[int(np.argmax(p[allowed]))])
    return np.asarray(out, np.int64)


def allmusic_taggrams(
    bundle: Path, rows: list[dict[str, str]], labels: np.ndarray, variant: str
) -> Taggrams:
    """The port's taggrams of ``rows`` for ``variant`` (``norm``/``aug0``), cached."""
    from genrefy_tagger.listening.lite import LiteRunner

    cache = PORT_CACHE / f"allmusic_{variant}.npz"
    ids = np.asarray([r["id"] for r in rows])
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if np.array_equal(z["tracks"], ids):
                return Taggrams(
                    tuple(ids.tolist()), labels, tuple(np.split(z["x"], np.cumsum(z["n"])[:-1]))
                )
    meta = json.loads((bundle / "bundle.json").read_text())
    policy = WindowPolicy(max_windows=int(meta.get("analysis", {}).get("max_windows", 10)))
    lite = LiteRunner(two_output_frontend(bundle, PORT_CACHE / "frontend_tags_penult.tflite"))
    xs = []
    for r in rows:
        p = variant_patches(variant, Path(r["path"]), r["id"], policy)
        xs.append(lite(p)[:, :50].astype(np.float32) if len(p) else np.zeros((0, 50), np.float32))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, tracks=ids, n=np.asarray([len(x) for x in xs]), x=np.concatenate(xs))
    return Taggrams(tuple(ids.tolist()), labels, tuple(xs))


def fold_of(rows: list[dict[str, str]]) -> np.ndarray:
    """Artist-grouped fold per row (no artist in two folds)."""
    from sklearn.model_selection import GroupKFold

    fold = np.zeros(len(rows), int)
    groups = [r["group"] for r in rows]
    for f, (_, held) in enumerate(GroupKFold(n_splits=FOLDS).split(rows, groups=groups)):
        fold[held] = f
    return fold


def fold_evidence(
    bundle: Path, model: Any, valid: Taggrams, rows: list[dict[str, str]], jobs: int
) -> dict[str, np.ndarray]:
    """``rows`` through the tagger with ``model`` as the head (its own temperature)."""
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.listening.model import write_bundle_json

    from ..calibration import fit_temperature
    from ..litert import export_litert

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / bundle.name
        shutil.copytree(bundle, scratch)
        export_litert(model, scratch / "head.tflite")
        predictor = MusicnnPredictor(scratch)
        p_valid = np.stack([predictor.head_probabilities(p).mean(0) for p in valid.patches])
        meta = json.loads((bundle / "bundle.json").read_text())
        meta.pop("outside", None)
        meta["calibration"]["temperature"] = round(fit_temperature(p_valid, valid.labels), 4)
        write_bundle_json(scratch, meta)
        return evidence(scratch, rows, jobs)


def retrain_with_allmusic(
    bundle: Path,
    gtzan: Path,
    *,
    variants: tuple[str, ...],
    members: int,
    max_epochs: int,
    seed: int = 0,
    jobs: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fold heads (out-of-fold evidence), then the shipped head on everything."""
    from .head import HeadParams, ensemble
    from .retrain import concat, head_data, retrain_bundle, train_members

    rows = inside_rows()
    before = evidence(bundle, rows, jobs)  # the head before labels Pop/Rock clips
    labels = labels_of(rows, before["pooled"])
    am = [allmusic_taggrams(bundle, rows, labels, v) for v in ("norm", "aug0")]
    data = head_data(gtzan, variants)
    params = HeadParams(**json.loads((bundle / "bundle.json").read_text())["head"]["params"])
    fold = fold_of(rows)
    tags = np.zeros((len(rows), 50))
    pooled = np.zeros((len(rows), len(GTZAN_GENRES)))
    for f in range(FOLDS):
        train = concat(data.train, *(a.subset(fold != f) for a in am))
        heads, info = train_members(
            params,
            train,
            data.valid,
            members=members,
            max_epochs=max_epochs,
            seed=seed,
            log=lambda s: None,
        )
        held = np.flatnonzero(fold == f)
        ev = fold_evidence(
            bundle, ensemble(heads, params.seq_len), data.valid, [rows[i] for i in held], jobs
        )
        tags[held], pooled[held] = ev["tags"], ev["pooled"]
        right = sum(
            GTZAN_GENRES[int(np.argmax(pooled[i]))] in rows[i]["label"].split("|") for i in held
        )
        log(
            f"fold {f}: {len(held)} allmusic clips held out, {right} picked right; "
            f"epochs {info['epochs']}, ff-valid {info['smoothed_accuracy']:.3f} (smoothed)"
        )
    extra = concat(*am)
    meta = retrain_bundle(
        bundle,
        gtzan,
        variants=variants,
        members=members,
        max_epochs=max_epochs,
        seed=seed,
        extra=extra,
        log=log,
    )
    np.savez(
        OOF_EVIDENCE,
        ids=np.asarray([r["id"] for r in rows]),
        tags=tags,
        pooled=pooled,
        head_sha256=np.asarray(head_digest(bundle)),
    )
    log(f"out-of-fold evidence of {len(rows)} allmusic clips → {OOF_EVIDENCE}")
    return meta


def out_of_fold_evidence(bundle: Path) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The saved out-of-fold tags and pooled scores per allmusic id, if they belong to
    ``bundle``'s head; None when the head never trained on allmusic."""
    meta = json.loads((bundle / "bundle.json").read_text())
    if "allmusic" not in meta.get("head", {}).get("trained_with", ""):
        return None
    if not OOF_EVIDENCE.is_file():
        raise RuntimeError(f"the head trained on allmusic clips; {OOF_EVIDENCE} is missing")
    with np.load(OOF_EVIDENCE, allow_pickle=False) as z:
        if str(z["head_sha256"]) != head_digest(bundle):
            raise RuntimeError(f"{OOF_EVIDENCE} belongs to another head: retrain again")
        return {str(i): (t, p) for i, t, p in zip(z["ids"], z["tags"], z["pooled"], strict=True)}
