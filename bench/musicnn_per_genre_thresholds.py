"""Would one genre threshold per genre write more of a real library? (issue 19; not kept)

The shipped musicnn bundle's evidence on the validation mix (GTZAN ff-valid + allmusic,
through the tagger at ``--min-confidence 0``), the outside rule's out-of-fold scores
(``model_training.musicnn.outside``), then per genre a threshold plus the rule's threshold,
greedily lowered while >= 95 % of the genres written on the mix are right and <= 10 % of
its outside clips get one. Printed: in sample on the mix against the one shipped threshold,
and on allmusic in nested artist-grouped CV (thresholds chosen without the fold).

    .venv/bin/python bench/musicnn_per_genre_thresholds.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrefy_tagger.listening.outside import features  # noqa: E402
from model_training.musicnn import outside  # noqa: E402

TAU = np.round(np.arange(0.05, 1.0, 0.01), 2)


def greedy(pick, conf, score, kind, right, keep) -> tuple[int, float, np.ndarray]:
    """(in-genre clips written, rule threshold, per-genre thresholds) on ``keep``."""
    n_out = max(int((keep & (kind == "outside")).sum()), 1)

    def feasible(w: np.ndarray) -> bool:
        if not w.any():
            return True
        precision = (w & right).sum() / w.sum()
        out_share = (w & (kind == "outside")).sum() / n_out
        return precision >= outside.TARGET_PRECISION and out_share <= outside.MAX_OUTSIDE

    best = (-1, 0.0, np.zeros(0))
    for tau in TAU:
        heard = keep & (score < tau)
        t = np.full(pick.max() + 1, 1.01)
        while True:
            move = None
            for g in range(len(t)):
                lower = heard & (pick == g) & (conf < t[g])
                if not lower.any():
                    continue
                t2 = t.copy()
                t2[g] = conf[lower].max()
                w = heard & (conf >= t2[pick])
                gain = int((w & (kind != "outside")).sum())
                if feasible(w) and (move is None or gain > move[0]):
                    move = (gain, t2)
            if move is None:
                break
            t = move[1]
        gain = int((heard & (conf >= t[pick]) & (kind != "outside")).sum())
        if gain > best[0]:
            best = (gain, float(tau), t)
    return best


def main() -> None:
    from sklearn.model_selection import GroupKFold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    gtzan = Path(__file__).resolve().parents[2] / "shared" / "gtzan"
    from genrefy_tagger.listening.model import load_bundle

    bundle = ROOT / "genrefy_tagger" / "models" / "musicnn"
    rows = outside.mix_rows(gtzan)
    ev = outside.evidence(bundle, rows, args.jobs)
    genres = list(load_bundle(bundle).genres)
    pick = np.array([genres.index(p) for p in ev["pick"]])
    kind = np.array([r["kind"] for r in rows])
    right = np.array([r["kind"] != "outside" and p in r["label"].split("|")
                      for p, r in zip(ev["pick"], rows, strict=True)])  # fmt: skip
    groups = np.array([r["group"] for r in rows])
    score = outside.out_of_fold(features(ev["tags"], ev["pooled"]),
                                (kind == "outside").astype(int), groups)  # fmt: skip
    one = outside.choose(ev["conf"], score, kind, right)
    gain, tau, t = greedy(pick, ev["conf"], score, kind, right, np.ones(len(rows), bool))
    print(f"in sample, one threshold: {round(one['coverage_inside'] * (kind != 'outside').sum())}"
          f" in-genre clips of the mix written; per genre: {gain} "
          f"(rule {tau}, {dict(zip(genres, np.round(t, 2).tolist(), strict=True))})")  # fmt: skip
    am = np.array([i for i, r in enumerate(rows) if r["source"] == "allmusic"])
    written = np.zeros(len(rows), bool)
    for _, held in GroupKFold(n_splits=outside.FOLDS).split(am, groups=groups[am]):
        held = am[held]
        keep = np.ones(len(rows), bool)
        keep[held] = False
        _, tau, t = greedy(pick, ev["conf"], score, kind, right, keep)
        written[held] = (score[held] < tau) & (ev["conf"][held] >= t[pick[held]])
    inside = np.isin(np.arange(len(rows)), am) & (kind != "outside")
    print(f"allmusic, nested artist-grouped CV, per-genre thresholds: in-genre + Pop/Rock "
          f"{int((written & inside).sum())} written, {int((written & inside & right).sum())} "
          f"right of {int(inside.sum())}; outside {int((written & (kind == 'outside')).sum())} "
          f"of {int((kind == 'outside').sum())} written")  # fmt: skip


if __name__ == "__main__":
    main()
