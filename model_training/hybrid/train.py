"""Training one network: windows in, a fitted Keras model and its history out.

* Windows of a clip stay together, and the scaler is fitted on the training
  windows only (:mod:`model_training.hybrid.windows`).
* Imbalance (classical and pop have 6× the clips of the other genres here) is
  handled by class-balanced sampling: every epoch draws the same number of
  windows from each genre, spread over that genre's tracks and their augmented
  copies. That also keeps an epoch's cost fixed whatever the dataset size.
* Early stopping watches the (genre-balanced) validation loss and restores the
  best weights; the learning rate halves when that loss stalls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES

from ..plan import clips_of, names, stratified_carve
from .network import DEFAULT_HP, build_model, compile_model
from .windows import WindowSet, fit_scaler, standardise


def configure_tensorflow(threads: int | None = None) -> None:
    """Few threads: the machine's cores are shared (``GENREFY_TF_THREADS``, default 2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    n = threads or int(os.environ.get("GENREFY_TF_THREADS", "2"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process; the first setting stands


def _balanced_dataset(
    ws: WindowSet,
    *,
    batch_size: int,
    windows_per_epoch: int,
    seed: int,
    mask: int = 0,
    mixup: float = 0.0,
):
    """A Keras ``PyDataset`` drawing genre-balanced batches, reshuffled every epoch
    (optionally masked and mixed, see :func:`_regularise`)."""
    import keras

    n_classes = len(GTZAN_GENRES)
    by_class = [np.flatnonzero(ws.y == c) for c in range(n_classes)]
    present = [c for c in range(n_classes) if len(by_class[c])]
    # Inside a genre, each track is equally likely (a long track is not favoured).
    track_weights = {}
    for c in present:
        counts = np.bincount(ws.track[by_class[c]])
        w = 1.0 / counts[ws.track[by_class[c]]]
        track_weights[c] = w / w.sum()

    class Balanced(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.steps = max(1, windows_per_epoch // batch_size)
            self.on_epoch_end()

        def __len__(self) -> int:
            return self.steps

        def on_epoch_end(self) -> None:
            self.epoch = getattr(self, "epoch", -1) + 1
            n = self.steps * batch_size
            classes = self.rng.choice(present, size=n)
            idx = np.empty(n, dtype=np.int64)
            for c in present:
                where = np.flatnonzero(classes == c)
                idx[where] = self.rng.choice(by_class[c], size=len(where), p=track_weights[c])
            self.order = idx

        def __getitem__(self, i: int):
            sel = self.order[i * batch_size : (i + 1) * batch_size]
            x = ws.x[sel]
            y = keras.utils.to_categorical(ws.y[sel], n_classes)
            # Batches are drawn in order, one at a time: a generator per batch keeps the
            # masks and mixing reproducible whatever the epoch.
            rng = np.random.default_rng((seed, self.epoch, i))
            return _regularise(x, y, rng, mask=mask, mixup=mixup)

    return Balanced()


def _regularise(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, mask: int, mixup: float
) -> tuple[np.ndarray, np.ndarray]:
    """SpecAugment-style masking and mixup of one training batch.

    x : (batch, frames, features) standardised, y : (batch, classes) one-hot.
    ``mask``: each window loses two random time spans of up to ``mask`` frames and one
    band of up to ``mask // 2`` feature rows (set to 0, the training mean).
    ``mixup``: Beta(mixup, mixup) blends of each window with another of the batch.
    With 200-odd training clips the network otherwise memorises them within a few epochs.
    """
    if mask:
        x = x.copy()
        n, frames, feats = x.shape
        for k in range(n):
            for _ in range(2):
                w = rng.integers(0, mask + 1)
                t = rng.integers(0, frames - w + 1)
                x[k, t : t + w] = 0.0
            w = rng.integers(0, mask // 2 + 1)
            f = rng.integers(0, feats - w + 1)
            x[k, :, f : f + w] = 0.0
    if mixup:
        lam = rng.beta(mixup, mixup, size=len(x)).astype(np.float32)
        lam = np.maximum(lam, 1 - lam)  # the window keeps its own label as the larger part
        perm = rng.permutation(len(x))
        x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
        y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    return x.astype(np.float32, copy=False), y.astype(np.float32, copy=False)


@dataclass
class TrainResult:
    model: Any  # keras.Model with the best (lowest validation loss) weights
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def train_model(
    hp: dict[str, Any],
    train: WindowSet,
    valid: WindowSet,
    *,
    epochs: int = 60,
    patience: int = 10,
    windows_per_epoch: int = 2048,
    seed: int = 0,
    on_epoch: Callable[[int, Any, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on standardised ``train`` windows, early-stopping on ``valid``.

    ``on_epoch(epoch, model, logs)`` runs after every epoch (tuning reports to
    Optuna and may raise ``optuna.TrialPruned`` from it).
    """
    configure_tensorflow()
    import keras

    hp = {**DEFAULT_HP, **hp}
    keras.backend.clear_session()  # many models per process (CV, tuning): drop the old graphs
    keras.utils.set_random_seed(seed)
    model = build_model(
        hp, n_frames=train.x.shape[1], n_features=train.x.shape[2], n_classes=len(GTZAN_GENRES)
    )
    compile_model(model, hp)
    data = _balanced_dataset(
        train,
        batch_size=int(hp["batch_size"]),
        windows_per_epoch=windows_per_epoch,
        seed=seed,
        mask=int(hp["mask"]),
        mixup=float(hp["mixup"]),
    )
    valid_y = keras.utils.to_categorical(valid.y, len(GTZAN_GENRES))
    # Weight validation windows so every genre counts equally, as in training batches and
    # in macro-F1: otherwise classical and pop (60 % of the windows) decide when to stop.
    counts = np.bincount(valid.y, minlength=len(GTZAN_GENRES)).astype(np.float64)
    valid_w = (len(valid.y) / (np.count_nonzero(counts) * counts[valid.y])).astype(np.float32)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        # Halve the step size when the validation loss stalls: small noisy data sets
        # otherwise bounce around the minimum instead of settling into it.
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(2, patience // 3), min_lr=1e-5
        ),
        *_callbacks(epochs, progress, on_epoch),
    ]
    start = time.perf_counter()
    fit = model.fit(
        data,
        validation_data=(valid.x, valid_y, valid_w),
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,
    )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1
    return TrainResult(model, history, best, time.perf_counter() - start)


@dataclass
class Fitted:
    """A trained model with the scaler it expects."""

    result: TrainResult
    mean: np.ndarray  # (n_features,)
    scale: np.ndarray  # (n_features,)
    train_ids: list[str]
    valid_ids: list[str]

    def predict(self, windows: WindowSet) -> np.ndarray:
        """(n, n_classes) probabilities of ``windows`` (raw features)."""
        return predict(self.result.model, standardise(windows, self.mean, self.scale).x)


def fit_clips(
    hp: dict[str, Any],
    windows: WindowSet,
    train_ids: Sequence[str],
    valid_ids: Sequence[str] | None = None,
    *,
    valid_fraction: float = 0.15,
    seed: int = 0,
    **kwargs: Any,
) -> Fitted:
    """Fit the scaler and the network on the tracks ``train_ids``.

    ``valid_ids`` (original windows only) drive early stopping; when None, a
    stratified ``valid_fraction`` of ``train_ids`` is carved out for it, so the
    clips a caller scores the model on are never used to stop it.
    ``on_epoch(epoch, predict_fn, logs)`` runs after every epoch; ``predict_fn(ws)``
    gives the current model's probabilities for raw windows ``ws``.
    Other ``kwargs`` go to :func:`train_model`.
    """
    if valid_ids is None:
        rest, carved = stratified_carve(clips_of(train_ids), fraction=valid_fraction, seed=seed)
        train_ids, valid_ids = names(rest), names(carved)
    if set(train_ids) & set(valid_ids):
        raise AssertionError("a track is both trained on and used for early stopping")
    train = windows.subset(train_ids)
    # The scaler describes what the tagger will feed the network: original windows.
    mean, scale = fit_scaler(train.x[train.copy == 0])
    valid = standardise(windows.subset(valid_ids, augmented=False), mean, scale)
    hook = kwargs.pop("on_epoch", None)
    if hook is not None:

        def on_epoch(epoch: int, model: Any, logs: dict[str, float]) -> None:
            hook(epoch, lambda ws: predict(model, standardise(ws, mean, scale).x), logs)

        kwargs["on_epoch"] = on_epoch
    result = train_model(hp, standardise(train, mean, scale), valid, seed=seed, **kwargs)
    return Fitted(result, mean, scale, list(train_ids), list(valid_ids))


def predict(model: Any, x: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """Window probabilities, (n, n_frames, n_features) → (n, n_classes) float32."""
    if len(x) == 0:
        return np.zeros((0, len(GTZAN_GENRES)), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def _callbacks(epochs: int, progress: bool, on_epoch: Callable | None) -> list:
    """A tqdm bar over epochs (showing the latest losses) and the ``on_epoch`` hook."""
    import keras
    from tqdm.auto import tqdm

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = tqdm(total=epochs, desc="epochs", unit="ep", disable=not progress)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            self.bar.set_postfix(
                loss=f"{logs.get('loss', 0):.3f}", val_loss=f"{logs.get('val_loss', 0):.3f}"
            )
            self.bar.update()
            if on_epoch is not None:
                on_epoch(epoch, self.model, dict(logs))

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()

    return [Progress()]
