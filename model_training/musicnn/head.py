"""Genre head on MSD_musicnn taggrams: BiLSTM + attention over a track's windows.

Input: a time-ordered sequence of ``seq_len`` per-window taggrams (50 tag scores
each); output: probabilities over the 10 GTZAN genres. At tag time the tagger sees
only a bounded number of spread 3-s windows, so the head is trained on random
time-ordered subsets of a track's 1-s patches (``k_min`` … ``seq_len`` of them),
stretched to ``seq_len`` by repetition exactly as
:func:`genrefy_tagger.reading.musicnn.head_groups` does at tag time.

Training data: ``ff_train_taggrams.npz`` only. Validation: a stratified hold-out
of ff-train tracks and the shared ff-valid clips run through our port. ff-test is
read once, by :func:`model_training.musicnn.bundle.write_musicnn_bundle`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.musicnn import head_groups, stretch_indices

from .fidelity import Taggrams

if TYPE_CHECKING:
    import keras
    import optuna

N_TAGS = 50


@dataclass(frozen=True)
class HeadParams:
    """Hyper-parameters of the head and its training (what Optuna tunes)."""

    seq_len: int = 10  # the tagger's default max_windows
    lstm_units: int = 64
    attention_units: int = 32
    dropout: float = 0.3
    input_noise: float = 0.1  # Gaussian noise on standardised tag scores, training only
    l2: float = 0.0  # weight decay on the LSTM and dense kernels
    learning_rate: float = 1e-3
    batch_size: int = 64
    k_min: int = 4  # fewest distinct patches in a training sequence
    samples_per_track: int = 8  # fresh random sequences per track and epoch
    max_epochs: int = 40
    patience: int = 10


# --------------------------------------------------------------------------- model


def build_head(
    params: HeadParams,
    *,
    tag_mean: np.ndarray,
    tag_var: np.ndarray,
    n_genres: int = len(GTZAN_GENRES),
    name: str = "musicnn_genre_head",
) -> keras.Model:
    """BiLSTM + additive attention pooling over time → softmax over genres.

    Input ``taggrams`` (batch, seq_len, 50) raw sigmoid tag scores; output ``genre``
    (batch, n_genres). ``tag_mean`` / ``tag_var`` (50,) standardise the tags (from
    the training patches). Built-in layers only, so it loads in safe mode and
    exports to LiteRT with a static batch of 1.
    """
    import keras
    from keras import layers

    reg = keras.regularizers.l2(params.l2) if params.l2 > 0 else None
    inputs = keras.Input((params.seq_len, N_TAGS), name="taggrams")
    x = layers.Normalization(mean=tag_mean, variance=tag_var, name="tag_norm")(inputs)
    x = layers.GaussianNoise(params.input_noise, name="tag_noise")(x)
    h = layers.Bidirectional(layers.LSTM(params.lstm_units, return_sequences=True), name="bilstm")(
        x
    )  # (batch, seq_len, 2 * units)
    h = layers.Dropout(params.dropout, name="bilstm_dropout")(h)
    # Attention: one score per window, softmax over time, weighted sum of the states.
    score = layers.Dense(
        params.attention_units, activation="tanh", kernel_regularizer=reg, name="attention_hidden"
    )(h)
    score = layers.Dense(1, name="attention_score")(score)  # (batch, seq_len, 1)
    weights = layers.Softmax(axis=1, name="attention_weights")(score)
    pooled = layers.Dot(axes=1, name="attention_pool")([weights, h])  # (batch, 1, 2 * units)
    pooled = layers.Flatten(name="pooled")(pooled)
    pooled = layers.Dropout(params.dropout, name="pooled_dropout")(pooled)
    outputs = layers.Dense(n_genres, activation="softmax", kernel_regularizer=reg, name="genre")(
        pooled
    )
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# --------------------------------------------------------------------------- data


def sample_sequences(
    data: Taggrams, params: HeadParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Fresh training sequences: ``samples_per_track`` per track.

    Each picks ``k`` ∈ [k_min, seq_len] distinct patches of one track in time order —
    half of them anywhere (random subset), half evenly strided with a random
    stride ≤ 4 patches (like spread 3-s windows) — then stretches them to ``seq_len``.

    Returns
    -------
    x : np.ndarray [shape=(n_tracks * samples_per_track, seq_len, 50)], float32
    y : np.ndarray [shape=(n_tracks * samples_per_track,)], genre index
    """
    xs, ys = [], []
    for patches, label in zip(data.patches, data.labels, strict=True):
        n = len(patches)
        for s in range(params.samples_per_track):
            k = int(rng.integers(min(params.k_min, n), min(params.seq_len, n) + 1))
            if s % 2 == 0:
                idx = np.sort(rng.choice(n, size=k, replace=False))
            else:
                stride = int(rng.integers(1, max(1, min(4, (n - 1) // max(k - 1, 1))) + 1))
                start = int(rng.integers(0, n - stride * (k - 1)))
                idx = start + stride * np.arange(k)
            xs.append(patches[idx][stretch_indices(k, params.seq_len)])
            ys.append(label)
    return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64)


def spread_indices(n: int, count: int = 10) -> np.ndarray:
    """``count`` patches spread evenly over ``n`` (every 3rd of 28: 2.93 s apart)."""
    return np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(np.int64))


def class_weights(labels: np.ndarray, n_classes: int = len(GTZAN_GENRES)) -> dict[int, float]:
    """Balanced weights, n / (n_classes * count), for the genres present."""
    counts = np.bincount(labels, minlength=n_classes)
    return {c: float(len(labels) / (n_classes * counts[c])) for c in range(n_classes) if counts[c]}


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a per-genre random ``fraction`` of tracks (the hold-out)."""
    rng = np.random.default_rng(seed)
    hold = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        hold[rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False)] = True
    return hold


def tag_statistics(data: Taggrams) -> tuple[np.ndarray, np.ndarray]:
    """Per-tag mean and variance over all training patches, (50,) each."""
    allx = np.concatenate(data.patches)
    return allx.mean(0), allx.var(0) + 1e-6


# --------------------------------------------------------------------------- predict


Predict = Callable[[np.ndarray], np.ndarray]  # (n, seq_len, 50) → (n, n_genres)


def keras_predict(model: keras.Model) -> Predict:
    return lambda x: np.asarray(model.predict(x, batch_size=256, verbose=0))


def track_probabilities(predict: Predict, data: Taggrams, seq_len: int, *, mode: str) -> np.ndarray:
    """One probability vector per track: mean over its groups (the bundle's vote).

    ``mode="all"``: every patch (3 interleaved groups for 28 patches);
    ``"spread10"``: 10 evenly spread patches (1 group); ``"windows"``: the sequence
    as given (use with the port's window-plan taggrams).

    Returns
    -------
    probs : np.ndarray [shape=(n_tracks, n_genres)]
    """
    groups, owner = [], []
    for i, patches in enumerate(data.patches):
        if mode == "spread10":
            patches = patches[spread_indices(len(patches), 10)]
        g = head_groups(patches, seq_len)
        groups.append(g)
        owner += [i] * len(g)
    probs = predict(np.concatenate(groups))
    owner_arr = np.asarray(owner)
    return np.stack([probs[owner_arr == i].mean(0) for i in range(len(data.patches))])


# --------------------------------------------------------------------------- training


def train_head(
    params: HeadParams,
    train: Taggrams,
    *,
    validate: Callable[[keras.Model], float] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    trial: optuna.Trial | None = None,
    name: str = "musicnn_genre_head",
    log: Callable[[str], None] = print,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train on fresh random sequences each epoch; keep the best epoch by ``validate``.

    ``validate(model) -> score`` (higher is better) is called after every epoch; with
    it, training stops after ``patience`` epochs without improvement and the best
    weights are restored. Without it, exactly ``epochs`` epochs run (final refit).
    ``trial`` receives each epoch's score for the median pruner.
    """
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    mean, var = tag_statistics(train)
    model = build_head(params, tag_mean=mean, tag_var=var, name=name)
    weights = class_weights(train.labels)
    best, best_epoch, best_weights, history = -math.inf, 0, None, []
    n_epochs = epochs or params.max_epochs
    for epoch in range(1, n_epochs + 1):
        x, y = sample_sequences(train, params, rng)
        fit = model.fit(
            x,
            y,
            batch_size=params.batch_size,
            epochs=1,
            shuffle=True,
            class_weight=weights,
            verbose=0,
        )
        entry: dict[str, float] = {"epoch": epoch, "loss": float(fit.history["loss"][-1])}
        if validate is not None:
            score = float(validate(model))
            entry["val"] = score
            if score > best:
                best, best_epoch, best_weights = score, epoch, model.get_weights()
            if trial is not None:
                import optuna

                trial.report(score, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            if epoch - best_epoch >= params.patience:
                break
        history.append(entry)
        if epoch % 10 == 0:
            log(f"    epoch {epoch}: {entry}")
    if best_weights is not None:
        model.set_weights(best_weights)
    return model, {"best_val": best, "best_epoch": best_epoch, "history": history}


def ensemble(members: list[keras.Model], seq_len: int) -> keras.Model:
    """Average the probabilities of several trained heads in one model (one LiteRT file).

    Input ``taggrams`` (batch, seq_len, 50) → output ``genre`` (batch, n_genres); the
    members are nested functional models, so the result still loads in safe mode.
    """
    import keras
    from keras import layers

    if len(members) == 1:
        return members[0]
    inputs = keras.Input((seq_len, N_TAGS), name="taggrams")
    outputs = layers.Average(name="genre")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name="musicnn_genre_heads")


def params_from_json(path: str | os.PathLike) -> HeadParams:
    return HeadParams(**json.loads(Path(path).read_text()))


def params_to_dict(params: HeadParams) -> dict[str, Any]:
    return asdict(params)
