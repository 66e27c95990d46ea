"""Final musicnn head: refit, export, evaluate once on ff-test, write the bundle.

Bundle folder (``genrefy_tagger/models/musicnn``)::

    bundle.json            kind "musicnn", genres, vote, min_confidence, musicnn_config,
                           head settings, files, metrics, training data, licence
    frontend.keras/.tflite the MSD_musicnn port (from ``import-musicnn``)
    head.keras/.tflite     BiLSTM + attention genre head
    LICENSE-musicnn.txt    ISC notice of the converted weights
    report/                import.json, fidelity.json, metrics.json, confusion_*.png
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
from genrefy_tagger.listening.model import write_bundle_json
from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.musicnn import BUNDLE_KIND, DEFAULT_CONFIG
from genrefy_tagger.reading.windows import WindowPolicy

from ..calibration import min_confidence_for_accuracy
from ..litert import export_litert
from .convert import FRONTEND_KERAS, FRONTEND_TFLITE, LICENSE_FILE, MEL_BASIS_FILE
from .fidelity import Taggrams, read_manifest
from .head import (
    HeadParams,
    ensemble,
    keras_predict,
    params_to_dict,
    track_probabilities,
    train_head,
)
from .metrics import confusion_png, logistic_reference, scores

HEAD_KERAS, HEAD_TFLITE = "head.keras", "head.tflite"


def _lite_predict(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from genrefy_tagger.listening.lite import LiteRunner

    return LiteRunner(path, threads=1)


def write_musicnn_bundle(
    bundle: Path,
    *,
    params: HeadParams,
    epochs: int,
    members: int,
    sets: dict[str, Any],
    test: Taggrams,
    gtzan: Path,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Refit on all of ff-train, pick ``min_confidence`` on ff-valid, test once, write files.

    ``members`` heads (seeds ``seed`` …) are trained for ``epochs`` epochs each and
    averaged into one model (:func:`~model_training.musicnn.head.ensemble`).
    """
    report = bundle / "report"
    report.mkdir(parents=True, exist_ok=True)
    train: Taggrams = sets["train_all"]
    heads = [
        train_head(params, train, epochs=epochs, seed=seed + i, name=f"head_{i}", log=log)[0]
        for i in range(members)
    ]
    model = ensemble(heads, params.seq_len)
    model.save(bundle / HEAD_KERAS)
    export_litert(model, bundle / HEAD_TFLITE)
    keras_fn, lite_fn = keras_predict(model), _lite_predict(bundle / HEAD_TFLITE)

    # Validation (never ff-test): the shared ff-valid clips through the port's window plan.
    valid: Taggrams = sets["valid_windows"]
    p_valid = track_probabilities(keras_fn, valid, params.seq_len, mode="windows")
    p_valid_lite = track_probabilities(lite_fn, valid, params.seq_len, mode="windows")
    threshold = min_confidence_for_accuracy(valid.labels, p_valid)
    validation = {
        "ff_valid_shared_windows": scores(valid.labels, p_valid),
        "litert_vs_keras_max_abs": float(np.abs(p_valid - p_valid_lite).max()),
        "min_confidence_choice": threshold,
    }
    log(
        "ff-valid (81 shared clips, port, window plan): "
        + _short(validation["ff_valid_shared_windows"])
    )

    # ff-test, once: the head on the published arrays, next to the LR reference.
    test_all = track_probabilities(keras_fn, test, params.seq_len, mode="all")
    test_spread = track_probabilities(keras_fn, test, params.seq_len, mode="spread10")
    test_metrics = {
        "head_all_patches": scores(test.labels, test_all),
        "head_10_spread_patches": scores(test.labels, test_spread),
        "logistic_regression_reference": logistic_reference(train, test),
    }
    for name, m in test_metrics.items():
        log(f"ff-test {name}: {_short(m)}")
    confusion_png(test.labels, test_spread, report / "confusion_ff_test.png",
                  "ff-test (290 tracks), head on 10 spread patches")  # fmt: skip
    confusion_png(test.labels, test_all, report / "confusion_ff_test_all.png",
                  "ff-test (290 tracks), head on all patches")  # fmt: skip

    # Write bundle.json now: the end-to-end check below runs the shipped predictor.
    meta = _meta(params, epochs, members, threshold["min_confidence"], train, gtzan)
    write_bundle_json(bundle, meta)
    e2e = end_to_end(bundle, sets, test, keras_fn, params.seq_len, gtzan, log=log)
    metrics = {"validation": validation, "ff_test": test_metrics, "end_to_end": e2e}
    meta["metrics"] = _summary(metrics)
    write_bundle_json(bundle, meta)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def end_to_end(
    bundle: Path,
    sets: dict[str, Any],
    test: Taggrams,
    keras_fn: Callable[[np.ndarray], np.ndarray],
    seq_len: int,
    gtzan: Path,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The 74 shared ff-test clips: head on the port's output vs head on the arrays.

    ``product``: the shipped predictor (LiteRT front-end + head) on the files, with the
    tagger's default window plan. ``port_keras``: the same windows through the Keras
    port (cached). Both are compared with the head on the published arrays of the same
    tracks (10 spread patches and all patches).
    """
    port_windows: Taggrams = sets["port"]["windows"]
    in_test = np.array([sets["split"][t] == "test" for t in port_windows.tracks])
    shared = port_windows.subset(in_test)
    index = {t: i for i, t in enumerate(test.tracks)}
    published = test.subset(np.isin(np.arange(len(test.tracks)), [index[t] for t in shared.tracks]))
    order = [published.tracks.index(t) for t in shared.tracks]
    published = Taggrams(
        shared.tracks, published.labels[order], tuple(published.patches[i] for i in order)
    )
    predictor = MusicnnPredictor(bundle, threads=1)
    rows = {t: r for t, r in _manifest(gtzan).items()}
    product = []
    for t in shared.tracks:
        probs, _, _ = predictor.window_probabilities(gtzan / rows[t]["path"], policy=WindowPolicy())
        product.append(probs.mean(0))
    p_product = np.stack(product)
    p_port = track_probabilities(keras_fn, shared, seq_len, mode="windows")
    p_pub_spread = track_probabilities(keras_fn, published, seq_len, mode="spread10")
    p_pub_all = track_probabilities(keras_fn, published, seq_len, mode="all")
    agree = lambda a, b: float((a.argmax(1) == b.argmax(1)).mean())  # noqa: E731
    out = {
        "n_clips": len(shared.tracks),
        "product_accuracy": scores(shared.labels, p_product),
        "port_keras_accuracy": float((p_port.argmax(1) == shared.labels).mean()),
        "published_spread10_accuracy": float((p_pub_spread.argmax(1) == shared.labels).mean()),
        "published_all_accuracy": float((p_pub_all.argmax(1) == shared.labels).mean()),
        "agreement_product_vs_published_spread10": agree(p_product, p_pub_spread),
        "agreement_product_vs_published_all": agree(p_product, p_pub_all),
        "agreement_product_vs_port_keras": agree(p_product, p_port),
        "max_abs_product_vs_port_keras": float(np.abs(p_product - p_port).max()),
        "disagreements": [
            {
                "track": t,
                "true": GTZAN_GENRES[shared.labels[i]],
                "product": GTZAN_GENRES[p_product[i].argmax()],
                "published_all": GTZAN_GENRES[p_pub_all[i].argmax()],
            }
            for i, t in enumerate(shared.tracks)
            if p_product[i].argmax() != p_pub_all[i].argmax()
        ],
    }
    log(
        f"end to end ({out['n_clips']} shared ff-test clips): product accuracy "
        f"{out['product_accuracy']['accuracy']:.3f}, agreement with arrays "
        f"{out['agreement_product_vs_published_all']:.3f} (all) / "
        f"{out['agreement_product_vs_published_spread10']:.3f} (spread 10)"
    )
    return out


def _manifest(gtzan: Path) -> dict[str, dict[str, str]]:
    return {r["track_id"]: r for r in read_manifest(gtzan)}


def _short(m: dict[str, Any]) -> str:
    return f"accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} (n={m['n']})"


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers for bundle.json (full report in report/metrics.json)."""
    t = metrics["ff_test"]
    e = metrics["end_to_end"]
    pick = lambda m: {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}  # noqa: E731
    return {
        "ff_test_290_head_10_spread_patches": pick(t["head_10_spread_patches"]),
        "ff_test_290_head_all_patches": pick(t["head_all_patches"]),
        "ff_test_290_logistic_regression_reference": pick(t["logistic_regression_reference"]),
        "shared_ff_test_74_product": pick(e["product_accuracy"]),
        "shared_ff_test_74_agreement_with_arrays": round(
            e["agreement_product_vs_published_all"], 4
        ),
        "ff_valid_81_product": pick(metrics["validation"]["ff_valid_shared_windows"]),
    }


def _meta(
    params: HeadParams,
    epochs: int,
    members: int,
    min_confidence: float,
    train: Taggrams,
    gtzan: Path,
) -> dict[str, Any]:
    fidelity_path = (
        Path(__file__).resolve().parents[2] / "genrefy_tagger/models/musicnn/report/fidelity.json"
    )
    fidelity = json.loads(fidelity_path.read_text()) if fidelity_path.is_file() else {}
    return {
        "kind": BUNDLE_KIND,
        "name": "gtzan-musicnn",
        "model_version": dt.date.today().strftime("%Y.%m.%d"),
        "genres": list(GTZAN_GENRES),
        "vote": "mean",
        "min_confidence": min_confidence,
        "musicnn_config": DEFAULT_CONFIG.to_dict(),
        "head": {
            "seq_len": params.seq_len,
            "epochs": epochs,
            "members": members,
            "params": params_to_dict(params),
        },
        "files": {
            "frontend_keras": FRONTEND_KERAS,
            "frontend_tflite": FRONTEND_TFLITE,
            "head_keras": HEAD_KERAS,
            "head_tflite": HEAD_TFLITE,
            "licence": LICENSE_FILE,
            "mel_basis": MEL_BASIS_FILE,
        },
        "metrics": {},
        "fidelity": {
            k: fidelity[k]
            for k in (
                "n_clips",
                "mae_clip_mean",
                "mae_worst_clip",
                "corr_patch_mean",
                "top_agreement_clip_mean",
                "top_agreement_patch_mean",
            )  # fmt: skip
            if k in fidelity
        },
        "training_data": {
            "frontend": "MSD_musicnn (musicnn 0.1.0): Million Song Dataset, 50 Last.fm tags",
            "head": (
                f"GTZAN fault-filtered ff-train: {len(train.tracks)} tracks, "
                f"{sum(len(p) for p in train.patches)} MSD_musicnn taggram patches "
                "(musicnn_taggrams/ff_train_taggrams.npz)"
            ),
            "validation": "81 shared GTZAN ff-valid clips through the port (window plan)",
            "test": "ff-test taggrams (290 tracks), evaluated once",
        },
        "licence": (
            "Front-end weights: MSD_musicnn, ISC licence, Copyright (c) 2019, Jordi Pons and "
            "Xavier Favory (see LICENSE-musicnn.txt). Head: trained by genrefy on taggrams "
            "of GTZAN (research dataset)."
        ),
    }
