"""Does a musicnn head trained with allmusic previews pick their genres better? (issue 19)

A quick check on the float front-end's taggrams, without the tagger: the shipped head's
recipe (3 members, up to 8 epochs, epoch chosen on GTZAN ff-valid) trained on the 583-clip
GTZAN data alone (baseline), and again per artist-grouped fold of the 104 in-genre and
Pop/Rock ``../shared/allmusic`` previews with the other folds' previews added
(``model_training/musicnn/allmusic_head.py``'s data). Prints picks right per genre on the
held-out previews. ff-test is not read. Needs ``genrefy-train musicnn-port-data`` first.

    .venv/bin/python bench/musicnn_head_allmusic_folds.py [--seed 0] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrefy_tagger.reading.config import GTZAN_GENRES  # noqa: E402
from model_training.musicnn import allmusic_head as am  # noqa: E402

BUNDLE = ROOT / "genrefy_tagger" / "models" / "musicnn"


def summary(name: str, picks: np.ndarray, rows: list[dict[str, str]]) -> None:
    ok = np.array(
        [GTZAN_GENRES[p] in r["label"].split("|") for p, r in zip(picks, rows, strict=True)]
    )
    per = {}
    for g in ("blues", "classical", "country", "hiphop", "jazz", "reggae"):
        these = np.array([r["kind"] == "ten" and r["label"] == g for r in rows])
        per[g] = (int(ok[these].sum()), int(these.sum()))
    rec4 = np.mean([per[g][0] / per[g][1] for g in ("country", "hiphop", "jazz", "reggae")])
    coarse = np.array([r["kind"] == "coarse" for r in rows])
    print(f"{name}: {per}; mean recall of the four {rec4:.3f}; "
          f"Pop/Rock {int(ok[coarse].sum())}/{int(coarse.sum())}", flush=True)  # fmt: skip


def main() -> None:
    from model_training.musicnn.head import HeadParams, ensemble, keras_predict, track_probabilities
    from model_training.musicnn.retrain import concat, head_data, train_members

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="copies of each allmusic preview")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    gtzan = Path(__file__).resolve().parents[2] / "shared" / "gtzan"
    rows = am.inside_rows()
    labels = am.labels_of(rows, am.evidence(BUNDLE, rows, args.jobs)["pooled"])
    train_sets = [am.allmusic_taggrams(BUNDLE, rows, labels, v) for v in ("norm", "aug0")]
    windows = am.allmusic_taggrams(BUNDLE, rows, labels, "windows")
    data = head_data(gtzan, ("norm", "aug0"))
    params = HeadParams(**json.loads((BUNDLE / "bundle.json").read_text())["head"]["params"])
    fold = am.fold_of(rows)

    def picks_of(train, held: np.ndarray, name: str) -> np.ndarray:
        heads, info = train_members(params, train, data.valid, members=3, max_epochs=8,
                                    seed=args.seed, log=lambda s: None)  # fmt: skip
        predict = keras_predict(ensemble(heads, params.seq_len))
        p = track_probabilities(predict, windows.subset(held), params.seq_len, mode="windows")
        print(f"  {name}: epoch {info['epochs']}, ff-valid {info['smoothed_accuracy']:.3f}")
        return p.argmax(1)

    summary("baseline, no allmusic", picks_of(data.train, np.ones(len(rows), bool), "base"), rows)
    picks = np.zeros(len(rows), int)
    for f in range(am.FOLDS):
        extra = [s.subset(fold != f) for s in train_sets] * args.repeat
        picks[fold == f] = picks_of(concat(data.train, *extra), fold == f, f"fold {f}")
    summary("with allmusic, out of fold", picks, rows)


if __name__ == "__main__":
    main()
