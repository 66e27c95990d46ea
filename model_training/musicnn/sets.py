"""The data the musicnn head is tuned and validated on (ff-test is never in here).

* the published MSD_musicnn taggrams of the fault-filtered splits (``musicnn_taggrams/``);
* the port's taggrams of the shared clips through the tagger's window plan (cached);
* ff-train split into a fit part and a stratified hold-out (``HOLDOUT_FRACTION``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .fidelity import TAGGRAM_FILES, Taggrams, load_published, port_taggrams, read_manifest
from .head import stratified_holdout

HOLDOUT_FRACTION, HOLDOUT_SEED = 0.2, 7


def published(gtzan: Path) -> dict[str, Taggrams]:
    """The published taggrams of ff-train, ff-valid and ff-test (``musicnn_taggrams/``)."""
    return {k: load_published(gtzan / "musicnn_taggrams" / f) for k, f in TAGGRAM_FILES.items()}


def port(
    gtzan: Path, cache: Path, bundle: Path, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """The port's taggrams of every shared clip (computed once, then cached)."""
    import keras

    model = keras.models.load_model(bundle / "frontend.keras", safe_mode=True, compile=False)

    def predict(p: np.ndarray) -> np.ndarray:
        if not len(p):
            return np.zeros((0, model.output_shape[-1]), np.float32)
        return np.asarray(model.predict(p, batch_size=32, verbose=0), dtype=np.float32)

    return port_taggrams(gtzan, cache, predict=predict, log=log)


def split_of(gtzan: Path) -> dict[str, str]:
    """Each shared clip's fault-filtered split (``"none"``: in no list)."""
    return {r["track_id"]: r["fault_filtered_split"] for r in read_manifest(gtzan)}


def validation_sets(
    gtzan: Path, cache: Path, bundle: Path, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """ff-train split into fit / hold-out, and the shared ff-valid clips through the port."""
    train = published(gtzan)["ff_train"]
    hold = stratified_holdout(train.labels, HOLDOUT_FRACTION, HOLDOUT_SEED)
    taggrams = port(gtzan, cache, bundle, log=log)
    split = split_of(gtzan)
    in_valid = np.array([split[t] == "valid" for t in taggrams["windows"].tracks])
    return {
        "train_all": train,
        "fit": train.subset(~hold),
        "holdout": train.subset(hold),
        "valid_windows": taggrams["windows"].subset(in_valid),
        "port": taggrams,
        "split": split,
    }
