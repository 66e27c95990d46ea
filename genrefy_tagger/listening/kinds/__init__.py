"""Model kinds: every kind of bundle turns decoded windows into genre probabilities.

The engine never asks which kind it holds. It reads a bundle
(:mod:`genrefy_tagger.listening.model`),
gets its :class:`GenreModel` from :func:`load_model`, decodes the windows the model's
``window`` spec asks for (:func:`genrefy_tagger.reading.windows.read_windows`) and votes over
what :meth:`GenreModel.probabilities` returns. A kind is one module with a
``load(bundle, *, backend, threads)`` function, named in :data:`KINDS` under the
``kind`` its ``bundle.json`` carries.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from ...reading.windows import WindowSpec
from ..model import Bundle, BundleError

#: ``bundle.json``'s ``kind`` → the module that runs it. One line per kind.
KINDS: dict[str, str] = {
    # CNN + BiLSTM + attention over features.py
    "features": "genrefy_tagger.listening.kinds.hybrid",
    "musicnn": "genrefy_tagger.listening.kinds.musicnn",  # MSD_musicnn front-end + genre head
}


class GenreModel(Protocol):
    """What the engine needs of a loaded model, whatever its kind."""

    @property
    def window(self) -> WindowSpec:
        """The windows this model hears (rate, length, context, level)."""

    def probabilities(self, segments: np.ndarray) -> np.ndarray:
        """Genre probabilities of a track's audible windows.

        Parameters
        ----------
        segments : np.ndarray [shape=(n, window.segment_samples)], float32, n >= 1
            Audible, level-normalised windows in time order, from
            :func:`~genrefy_tagger.reading.windows.read_windows`.

        Returns
        -------
        probs : np.ndarray [shape=(m, n_genres)], float32, rows sum to 1
            One row per window, or per group of windows where the model judges
            several at once; the engine votes over the rows.
        """


def load_model(bundle: Bundle, *, backend: str = "auto", threads: int = 1) -> GenreModel:
    """The runnable model of ``bundle``, through the module its ``kind`` names."""
    module = KINDS.get(bundle.kind)
    if module is None:
        raise BundleError(
            f"{bundle.path}: unknown model kind {bundle.kind!r} "
            f"(this genrefy runs {', '.join(sorted(KINDS))}); upgrade genrefy"
        )
    return importlib.import_module(module).load(bundle, backend=backend, threads=threads)
