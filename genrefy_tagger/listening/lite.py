"""Running an exported network on LiteRT: 0.2 s to import, where TensorFlow takes 6 s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..reading.audio import quiet_decoder
from .model import BundleError


def lite_interpreter(path: Path, *, threads: int = 1) -> Any:
    """A LiteRT interpreter for ``path``, tensors allocated.

    LiteRT (``ai-edge-litert``) where it has wheels; TensorFlow's own copy of the
    interpreter otherwise (e.g. on Windows, where LiteRT has none).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter
        except ImportError as exc:
            raise BundleError(
                "running the model needs ai-edge-litert (pip install ai-edge-litert) or tensorflow"
            ) from exc
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    # LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to fd 2
    # here, once per process, and offers no setting to stop it; real errors still raise.
    with quiet_decoder():
        interpreter.allocate_tensors()
    return interpreter


class LiteRunner:
    """One ``.tflite`` network with a static batch size: rows in, rows out.

    The exports have a fixed batch (1 for musicnn's networks, 32 for the hybrid);
    a last, partial batch is padded with zeros and the padding's outputs dropped.
    """

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        if not Path(path).is_file():
            raise BundleError(f"bundle has no {Path(path).name}")
        self._interp = lite_interpreter(Path(path), threads=threads)
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, *input_shape[1:]) → (n, *output_shape[1:]) float32."""
        batch = int(self._in["shape"][0])
        out = np.zeros((len(x), *self._out["shape"][1:]), dtype=np.float32)
        for i in range(0, len(x), batch):
            chunk = np.asarray(x[i : i + batch], dtype=np.float32)
            n = len(chunk)
            if n < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), np.float32)])
            self._interp.set_tensor(self._in["index"], chunk)
            self._interp.invoke()
            out[i : i + n] = self._interp.get_tensor(self._out["index"])[:n]
        return out
