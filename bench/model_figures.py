"""Re-measure every number of the README's model table from the shipped bundles.

Everything goes through the real tagging path (the shipped bundle, its window plan,
its calibration and threshold) unless said otherwise:

* the shared ff-test clips (161; evaluation only): accuracy, mean recall over blues,
  classical, jazz and pop, macro-F1 over the genres present;
* musicnn only: the full 290-track ff-test through the shipped head on the published
  MSD_musicnn taggrams (as many spread 1-s patches as the tagger hears windows);
* musicnn only: precision of the written genres and coverage at the default threshold
  on the shared ff-valid clips (the head's validation data, never trained on);
* both: the 182 real commercial previews of ``../shared/allmusic`` per kind, with counts
  (``allmusic_figures.py``); a bundle that trained on allmusic clips gets those figures
  only from the artist-grouped cross-validation its training recorded
  (``metrics.allmusic_grouped_cv``), never from the clips it trained on;
* pick agreement under the six transformations of ``bench_invariance.py``;
* hybrid: the precision / coverage of its threshold on its early-stopping clips, as
  measured through the tagger when the bundle was calibrated (``calibration``), and
  its cross-validation macro-F1 as recorded by training (``metrics.cross_validation``).

    .venv/bin/python bench/model_figures.py [--jobs 2] [--write] [--no-invariance]

``--write`` stores the figures in each bundle's ``bundle.json`` (``metrics.figures``).
Prints the markdown table the README shows.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import allmusic_figures  # noqa: E402
from bench_invariance import GTZAN, TRANSFORMS, measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "genrefy_tagger" / "models"
BIG4 = ("blues", "classical", "jazz", "pop")


def _scores(truth: list[str], picks: list[str | None]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    present = sorted(set(truth))
    picks_ = [p or "none" for p in picks]
    recall = [np.mean([p == g for p, t in zip(picks_, truth, strict=True) if t == g]) for g in BIG4]
    return {
        "accuracy": float(np.mean([p == t for p, t in zip(picks_, truth, strict=True)])),
        "mean_recall_big4": float(np.mean(recall)),
        "macro_f1_present": float(
            f1_score(truth, picks_, labels=present, average="macro", zero_division=0)
        ),
    }


def published_ff_test(bundle: Path) -> dict[str, float]:
    """The shipped head (LiteRT, calibrated) on the published taggrams of all 290 tracks."""
    from sklearn.metrics import f1_score

    sys.path.insert(0, str(ROOT))
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.listening.model import load_bundle
    from genrefy_tagger.listening.vote import calibrate
    from model_training.musicnn.fidelity import load_published
    from model_training.musicnn.head import spread_indices

    meta = load_bundle(bundle)
    predictor = MusicnnPredictor(bundle)
    test = load_published(GTZAN / "musicnn_taggrams" / "ff_test_taggrams.npz")
    probs = []
    for patches in test.patches:
        p = predictor.head_probabilities(patches[spread_indices(len(patches), meta.max_windows)])
        probs.append(calibrate(p.mean(0), meta.temperature))
    pred = np.stack(probs).argmax(1)
    return {
        "n": len(pred),
        "windows": meta.max_windows,
        "accuracy": float((pred == test.labels).mean()),
        "macro_f1": float(f1_score(test.labels, pred, average="macro")),
    }


def validation_precision(bundle: Path, jobs: int) -> dict[str, float]:
    """Precision of what would be written, and coverage, on the shared ff-valid clips."""
    from genrefy_tagger.listening.engine import analyse_paths

    with open(GTZAN / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["fault_filtered_split"] == "valid"]
    got = list(analyse_paths([GTZAN / r["path"] for r in rows], bundle_path=bundle, jobs=jobs))
    kept = [(a.decision.genre, r["genre"]) for a, r in zip(got, rows, strict=True)
            if a.decision and not a.decision.unsure]  # fmt: skip
    return {
        "n": len(rows),
        "written": len(kept),
        "coverage": len(kept) / len(rows),
        "precision": float(np.mean([p == t for p, t in kept])) if kept else float("nan"),
        "accuracy_all": float(
            np.mean(
                [
                    a.decision is not None and a.decision.genre == r["genre"]
                    for a, r in zip(got, rows, strict=True)
                ]
            )
        ),  # fmt: skip
    }


def figures(name: str, jobs: int, invariance: bool) -> dict:
    bundle = MODELS / name
    meta = json.loads((bundle / "bundle.json").read_text())
    inv = measure(name, jobs, transforms=TRANSFORMS if invariance else ())
    out: dict = {
        "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/model_figures.py" + ("" if invariance else " --no-invariance"),
        "model_version": meta.get("model_version"),
        "shared_ff_test": {"n": inv["n_clips"], **_scores(inv["truth"], inv["picks"])},
        "min_confidence": meta.get("min_confidence"),
        "temperature": meta.get("calibration", {}).get("temperature", 1.0),
    }
    out["shared_ff_test"]["at_threshold"] = {
        "coverage": float(np.mean([not u for u in inv["unsure"]])),
        "precision": float(np.mean([p == t for p, t, u in
                                    zip(inv["picks"], inv["truth"], inv["unsure"], strict=True)
                                    if not u])),
    }  # fmt: skip
    _reliability(bundle, inv)
    if invariance:
        out["invariance"] = {
            "agreement_all": inv["agreement_all"],
            **{k: v["agreement"] for k, v in inv["transforms"].items()},
        }
    if meta.get("kind") == "musicnn":
        out["ff_test_290_published_taggrams"] = published_ff_test(bundle)
        out["ff_valid_at_threshold"] = validation_precision(bundle, jobs)
    elif "threshold_choice" in meta.get("calibration", {}):
        choice = meta["calibration"]["threshold_choice"]
        out["validation_at_threshold"] = {
            "precision": choice["precision"],
            "coverage": choice["coverage"],
            "n": choice["n"],
            "measured": "at calibration, " + meta["calibration"]["fitted_on"],
        }
    if allmusic_figures.trained_on_allmusic(meta):
        out["allmusic"] = meta.get("metrics", {}).get("allmusic_grouped_cv")
    else:
        out["allmusic"] = {k: v for k, v in allmusic_figures.measure(bundle, jobs).items()
                           if k != "clips"}  # fmt: skip
    cv = meta.get("metrics", {}).get("cross_validation")
    if cv:
        out["cv_macro_f1"] = {"mean": cv["track_macro_f1"]["mean"], "clips": cv.get("clips")}
    return out


def _reliability(bundle: Path, inv: dict) -> None:
    """Reliability diagram of the shipped (calibrated) confidences on the shared test clips."""
    sys.path.insert(0, str(ROOT))
    from genrefy_tagger.reading.config import GTZAN_GENRES
    from model_training.calibration import reliability_png

    keep = [i for i, r in enumerate(inv["ranked"]) if r is not None]
    probs = np.array([[inv["ranked"][i].get(g, 0.0) for g in GTZAN_GENRES] for i in keep])
    labels = np.array([GTZAN_GENRES.index(inv["truth"][i]) for i in keep])
    (bundle / "report").mkdir(exist_ok=True)
    title = f"{bundle.name}: {len(keep)} shared ff-test clips (evaluation only)"
    reliability_png(probs, labels, bundle / "report" / "reliability_shared_ff_test.png", title)


def _validation(d: dict) -> str:
    v = d.get("ff_valid_at_threshold") or d.get("validation_at_threshold")
    if not v:
        return "–"
    n = v["n"]
    return f"{v['precision']:.3f} / {v['coverage']:.3f} ({n})"


def table(figs: dict[str, dict]) -> str:
    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    n_test = next(iter(figs.values()))["shared_ff_test"]["n"]

    rows = [
        (f"{n_test} shared ff-test clips: accuracy", lambda d: f(d["shared_ff_test"]["accuracy"])),
        ("same: mean recall over blues, classical, jazz, pop",
         lambda d: f(d["shared_ff_test"]["mean_recall_big4"])),
        ("same: macro-F1 (genres present)",
         lambda d: f(d["shared_ff_test"]["macro_f1_present"])),
        ("full ff-test via the published taggrams (290 tracks): accuracy / macro-F1",
         lambda d: (f"{d['ff_test_290_published_taggrams']['accuracy']:.3f} / "
                    f"{d['ff_test_290_published_taggrams']['macro_f1']:.3f}")
         if "ff_test_290_published_taggrams" in d else "–"),
        ("default threshold (calibrated confidence)", lambda d: f"{d['min_confidence']:.2f}"),
        (f"{n_test} shared ff-test clips at that threshold: precision / coverage",
         lambda d: (f"{d['shared_ff_test']['at_threshold']['precision']:.3f} / "
                    f"{d['shared_ff_test']['at_threshold']['coverage']:.3f}")),
        ("validation: precision of written genres / coverage (clips)", _validation),
        ("5-fold CV track macro-F1 (clips)",
         lambda d: f"{d['cv_macro_f1']['mean']:.3f} ({d['cv_macro_f1']['clips']})"
         if "cv_macro_f1" in d else "–"),
        ("pick agreement under the six transformations",
         lambda d: f(d["invariance"]["agreement_all"]) if "invariance" in d else "–"),
        *allmusic_figures.table_rows(),
    ]  # fmt: skip
    names = list(figs)
    lines = ["| measure | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---|" * len(names)]  # fmt: skip
    lines += [
        f"| {label} | " + " | ".join(get(figs[n]) for n in names) + " |" for label, get in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["musicnn", "hybrid"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-invariance", action="store_true")
    parser.add_argument("--write", action="store_true", help="store in each bundle.json")
    parser.add_argument("--out", type=Path, default=None, help="also write all figures as JSON")
    args = parser.parse_args()
    figs = {n: figures(n, args.jobs, not args.no_invariance) for n in args.models}
    print(table(figs))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figs, indent=1) + "\n")
    if args.write:
        from genrefy_tagger.listening.model import write_bundle_json

        for n, d in figs.items():
            meta = json.loads((MODELS / n / "bundle.json").read_text())
            meta.setdefault("metrics", {})["figures"] = d
            write_bundle_json(MODELS / n, meta)


if __name__ == "__main__":
    main()
