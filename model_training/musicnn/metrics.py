"""Scoring the musicnn head's track probabilities: metrics, a reference model, a figure."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES

from .fidelity import Taggrams


def scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 (all 10 genres and genres present), log-loss, per-genre table."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    pred = probs.argmax(1)
    present = np.unique(labels)
    p, r, f, s = precision_recall_fscore_support(
        labels, pred, labels=range(len(GTZAN_GENRES)), zero_division=0
    )
    eps = 1e-7
    return {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(
            f1_score(
                labels, pred, labels=range(len(GTZAN_GENRES)), average="macro", zero_division=0
            )
        ),
        "macro_f1_present": float(
            f1_score(labels, pred, labels=present, average="macro", zero_division=0)
        ),
        "log_loss": float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1)))),
        "per_genre": {
            g: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "n": int(s[i])}
            for i, g in enumerate(GTZAN_GENRES)
        },
    }


def logistic_reference(train: Taggrams, test: Taggrams, *, seed: int = 0) -> dict[str, Any]:
    """The taggrams README's reference: class-balanced LR on per-track mean/std/max."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pooled(data: Taggrams) -> np.ndarray:
        return np.stack([np.r_[p.mean(0), p.std(0), p.max(0)] for p in data.patches])

    clf = make_pipeline(
        StandardScaler(),
        LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed),
    )
    clf.fit(pooled(train), train.labels)
    return scores(test.labels, clf.predict_proba(pooled(test)))


def confusion_png(
    labels: np.ndarray, probs: np.ndarray, path: str | os.PathLike, title: str
) -> None:
    """Confusion matrix (rows: true genre, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(labels, probs.argmax(1), labels=range(len(GTZAN_GENRES)))
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(GTZAN_GENRES)), GTZAN_GENRES, rotation=45, ha="right")
    ax.set_yticks(range(len(GTZAN_GENRES)), GTZAN_GENRES)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                color = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color, fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
