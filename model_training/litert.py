"""Keras → LiteRT, as every bundle's ``.tflite`` is written (hybrid and musicnn alike)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


def export_litert(model: Any, path: str | os.PathLike, shape: Sequence[int] | None = None) -> None:
    """Export ``model`` with a static batch of 1 (what the LiteRT predictor feeds).

    ``shape``: one input's shape without the batch axis (default: the model's own). The
    BiLSTMs of both models do not convert with a dynamic batch.
    """
    import keras

    shape = tuple(model.input_shape[1:] if shape is None else shape)
    spec = keras.InputSpec(shape=(1, *shape), dtype="float32")
    model.export(str(path), format="litert", input_signature=[spec], verbose=False)
