"""The head-with-allmusic training option keeps its figures honest.

``genrefy-train musicnn-retrain --with-allmusic`` trains on real previews; their figures
must come from heads that never heard the preview's artist, and ``musicnn-outside`` must
refuse to fit on a head's own training clips.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genrefy_tagger.listening.model import load_bundle
from model_training.musicnn import allmusic_head as am


def test_folds_never_split_an_artist(allmusic_dir: Path):
    rows = am.inside_rows(allmusic_dir)
    fold = am.fold_of(rows)
    assert len(rows) == 104 and {r["kind"] for r in rows} == {"ten", "coarse"}
    assert set(fold.tolist()) == set(range(am.FOLDS))
    for artist in {r["group"] for r in rows}:
        assert len({f for f, r in zip(fold, rows, strict=True) if r["group"] == artist}) == 1


def test_a_pop_rock_preview_takes_the_best_of_pop_rock_and_metal():
    genres = load_bundle("musicnn").genres
    pooled = np.full((2, len(genres)), 0.01)
    pooled[:, genres.index("hiphop")] = 0.9  # the head's pick is neither label
    pooled[:, genres.index("metal")] = 0.05
    rows = [{"label": "pop|rock|metal"}, {"label": "reggae"}]
    assert [genres[i] for i in am.labels_of(rows, pooled)] == ["metal", "reggae"]


def test_outside_fitting_needs_the_heads_that_did_not_hear_the_previews(tmp_path: Path):
    shipped = load_bundle("musicnn").path
    assert am.out_of_fold_evidence(shipped) is None  # the shipped head never heard allmusic
    copy = tmp_path / "musicnn"
    shutil.copytree(shipped, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["head"]["trained_with"] = "104 allmusic tracks"
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match="allmusic_oof_evidence"):
        am.out_of_fold_evidence(copy)  # missing, or saved for another head
