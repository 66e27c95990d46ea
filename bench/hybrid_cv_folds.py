"""The hybrid's k-fold CV, some folds per process (an experiment runner, not a test).

``genrefy-train evaluate --no-test --no-leaky`` trains the folds one after another in one
process. On a shared machine a final training and the CV can then not overlap fold by fold;
this runs folds ``--first``..``--last`` of a run's plan exactly as ``evaluate`` does (the
same hyperparameters, fit settings and per-fold seed ``plan.seed + fold``) and writes
``<out>/cv-folds/fold-<n>.json``; ``--merge`` then writes ``<out>/cv.json`` from all of
them (``--partial``: from those there, saying which are missing), with the same summary,
vote rule, threshold, ``report/confusion_cv.png`` and ``report/curves_cv.png`` as
``evaluate``::

    python bench/hybrid_cv_folds.py --out runs/v10 --hp runs/v10/hp.json --first 0 --last 2 &
    python bench/hybrid_cv_folds.py --out runs/v10 --hp runs/v10/hp.json --first 3 --last 4
    python bench/hybrid_cv_folds.py --out runs/v10 --merge
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_folds(out: Path, hp_file: Path | None, first: int, last: int, fit: dict) -> None:
    from model_training.evaluate import write_json
    from model_training.hybrid import experiments
    from model_training.hybrid.steps import hyperparameters, run_windows

    info, plan, windows = run_windows(out)
    hp = hyperparameters(out, hp_file)
    for f in range(first, last + 1):
        # cross_validate seeds fold i of its list with seed + i: one fold, seed plan.seed + f.
        result = experiments.cross_validate(hp, windows, [plan.folds[f]], seed=plan.seed + f, **fit)
        fold = result["folds"][0]
        fold["history"] = result["histories"]["fold 1"]
        write_json(
            {"fold": f, "hp": hp, "fit": fit, "result": fold}, out / "cv-folds" / f"fold-{f}.json"
        )
        print(f"fold {f + 1}: {json.dumps(fold['track']['logmean']['macro_f1'])}", flush=True)


def merge(out: Path, *, partial: bool = False) -> dict:
    from model_training.calibration import choose_min_confidence
    from model_training.evaluate import (
        choose_vote,
        plot_confusion,
        plot_curves,
        summarize_folds,
        write_json,
    )
    from model_training.hybrid.steps import read

    plan = read(out / "plan.json")["plan"]
    parts = sorted((out / "cv-folds").glob("fold-*.json"), key=lambda p: int(p.stem[5:]))
    loaded = [json.loads(p.read_text()) for p in parts]
    have = [d["fold"] for d in loaded]
    missing = sorted(set(range(len(plan["folds"]))) - set(have))
    if missing and not (partial and have):
        raise SystemExit(f"folds present: {have}; need all {len(plan['folds'])} (or --partial)")
    results = [d["result"] for d in loaded]
    histories = {f"fold {d['fold'] + 1}": d["result"].pop("history") for d in loaded}
    vote, comparison = choose_vote(results)
    confidence = np.concatenate([r["track"][vote]["confidence"] for r in results])
    correct = np.concatenate([r["track"][vote]["correct"] for r in results]).astype(bool)
    result = {
        "summary": summarize_folds(results, rule=vote),
        "vote": vote,
        "vote_comparison": comparison,
        "threshold": choose_min_confidence(confidence, correct),
        "confusion_all_folds": np.sum([r["track"][vote]["confusion"] for r in results], 0).tolist(),
        "folds": results,
        "ran_as": "bench/hybrid_cv_folds.py, folds in separate processes",
    }
    if missing:  # said wherever the figures go: these are not k of k folds
        result["summary"]["folds_of"] = len(plan["folds"])
        result["summary"]["missing_folds"] = missing
        result["summary"]["note"] = f"only folds {have} (0-based) of {len(plan['folds'])} ran"
    write_json(result, out / "cv.json")
    # The figures evaluate draws, for export to copy into the bundle's report/.
    (out / "report").mkdir(parents=True, exist_ok=True)
    title = f"cross-validation, folds {[f + 1 for f in have]} ({vote} vote)"
    plot_confusion(result["confusion_all_folds"], out / "report" / "confusion_cv.png", title=title)
    plot_curves(histories, out / "report" / "curves_cv.png")
    return result


def main() -> None:
    from model_training import options

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="run folder with plan.json")
    ap.add_argument("--hp", type=Path, default=None, help="hyperparameters (as evaluate --hp)")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--last", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=Path(".cache/features"))
    ap.add_argument("--merge", action="store_true", help="write cv.json from the folds' files")
    ap.add_argument("--partial", action="store_true", help="with --merge: allow missing folds")
    args = ap.parse_args()
    if args.merge:
        s = merge(args.out, partial=args.partial)["summary"]
        acc, f1 = s["track_accuracy"], s["track_macro_f1"]
        print(
            f"CV track accuracy {acc['mean']:.3f} ± {acc['std']:.3f}, "
            f"macro-F1 {f1['mean']:.3f} ± {f1['std']:.3f} ({s['vote']} vote)"
        )
        return
    from model_training.hybrid.steps import read

    n = len(read(args.out / "plan.json")["plan"]["folds"])
    last = n - 1 if args.last is None else args.last
    fit = options.fit_kwargs(60, 10, 2048)  # evaluate's defaults
    run_folds(args.out, args.hp, args.first, last, fit)


if __name__ == "__main__":
    main()
