"""A third model kind in 20 lines (for test_layout.py): "bright" or "dark" by zero crossings."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ToyWindow:  # a WindowSpec: 8-kHz, 2-s windows, no FFT context, level left alone
    sample_rate: int = 8000
    window_seconds: float = 2.0
    window_samples: int = 16000
    context_samples: int = 0
    segment_samples: int = 16000
    loudness_db: float | None = None


class ToyModel:
    window = ToyWindow()

    def probabilities(self, segments: np.ndarray) -> np.ndarray:
        crossings = np.mean(np.abs(np.diff(np.sign(segments), axis=1)) > 0, axis=1)
        bright = np.clip(crossings * 4, 0.0, 1.0)  # 0.25 crossings per sample: surely bright
        return np.stack([1.0 - bright, bright], axis=1).astype(np.float32)


def load(bundle, *, backend: str = "auto", threads: int = 1) -> ToyModel:
    return ToyModel()
