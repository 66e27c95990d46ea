"""The shared README's reference models, on exactly a run's own splits (an experiment, not a test).

Per-clip mean and standard deviation of 20 MFCCs, 12 chroma bins and 7 spectral-contrast
bands (78 numbers, librosa defaults at 22,050 Hz), standardised, then a class-balanced
logistic regression and an RBF SVM (C = 10, balanced), as ``../shared/gtzan/README.md``
describes them. Scored two ways, with the run's ``plan.json``:

* k-fold CV over the run's folds (the hybrid's own cross-validation folds), and
* trained on the development clips, scored on the test clips,

so the hybrid and the references see the same clips, including what the plan leaves out
(repeated recordings, unlisted clips of scored artists)::

    python bench/reference_baselines.py --out runs/v7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clip_statistics(path: Path) -> np.ndarray:
    """(78,) mean and std over time of MFCC (20), chroma (12) and spectral contrast (7)."""
    import librosa

    y, sr = librosa.load(path, sr=22050)
    feats = [
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20),
        librosa.feature.chroma_stft(y=y, sr=sr),
        librosa.feature.spectral_contrast(y=y, sr=sr),
    ]
    return np.concatenate([np.r_[f.mean(1), f.std(1)] for f in feats])


def scores(truth: list[str], pred: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 over the genres present, as the hybrid's evaluation gives them."""
    from genrefy_tagger.reading.config import GTZAN_GENRES
    from model_training.evaluate import scores as evaluate_scores

    index = GTZAN_GENRES.index
    s = evaluate_scores([index(g) for g in truth], [index(g) for g in pred])
    return {"accuracy": round(s["accuracy"], 4), "macro_f1": round(s["macro_f1"], 4)}


def fit_predict(name: str, x_fit, y_fit, x_new) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = (
        LogisticRegression(max_iter=5000, class_weight="balanced")
        if name == "logreg"
        else SVC(C=10, class_weight="balanced")
    )
    return list(make_pipeline(StandardScaler(), model).fit(x_fit, y_fit).predict(x_new))


def main() -> None:
    from model_training import dataset
    from model_training.plan import Plan

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="run folder with plan.json")
    args = ap.parse_args()
    info = json.loads((args.out / "plan.json").read_text())
    plan = Plan.from_dict(info["plan"])
    clips = {c.track_id: c for c in dataset.discover(info["data"], check_audio=False).clips}
    wanted = sorted(set(plan.development()) | set(plan.test))
    stats = {t: clip_statistics(clips[t].path) for t in wanted}
    genre = {t: clips[t].genre for t in wanted}

    def xy(ids):
        return np.stack([stats[t] for t in ids]), [genre[t] for t in ids]

    result: dict = {"development_clips": len(plan.development()), "test_clips": len(plan.test)}
    for name in ("logreg", "svm"):
        fold_scores, truth, pred = [], [], []
        for fit, held in plan.folds:
            (xf, yf), (xh, yh) = xy(fit), xy(held)
            p = fit_predict(name, xf, yf, xh)
            fold_scores.append(scores(yh, p))
            truth += yh
            pred += p
        f1s = [s["macro_f1"] for s in fold_scores]
        (xd, yd), (xt, yt) = xy(plan.development()), xy(plan.test)
        result[name] = {
            "cv_folds": len(plan.folds),
            "cv_macro_f1_mean": round(float(np.mean(f1s)), 4),
            "cv_macro_f1_std": round(float(np.std(f1s)), 4),
            "cv_pooled": scores(truth, pred),
            "cv_per_fold": fold_scores,
            "test": scores(yt, fit_predict(name, xd, yd, xt)),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
