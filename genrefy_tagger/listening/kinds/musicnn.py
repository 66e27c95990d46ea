"""The ``musicnn`` kind: the MSD_musicnn front-end and a genre head, both on LiteRT.

3-s windows with FFT context → log-mel patches
(:func:`~genrefy_tagger.reading.musicnn.window_patches`)
→ the front-end (50 MSD tag scores per window) → the head over time-ordered groups of
windows (:func:`~genrefy_tagger.reading.musicnn.head_groups`). No TensorFlow or Keras import.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...reading.musicnn import MusicnnConfig, head_groups, window_patches
from ...reading.windows import WindowPolicy, read_windows
from ..lite import LiteRunner
from ..model import Bundle, BundleError, load_bundle


def _load_mel_basis(bundle_dir: Path, name: str | None, config: MusicnnConfig) -> np.ndarray | None:
    """The bundle's copy of librosa's mel filterbank (None: compute it with librosa).

    Tagging would otherwise import librosa (and with it SciPy's signal module and numba)
    in every worker just for this one (96, 257) matrix: ~1 s per process.
    """
    if name is None:
        return None
    try:
        basis = np.load(bundle_dir / name, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {bundle_dir / name}: {exc}") from exc
    if basis.shape != (config.n_mels, config.n_fft // 2 + 1) or basis.dtype != np.float32:
        raise BundleError(f"{bundle_dir / name}: {basis.dtype} {basis.shape} is not the filterbank")
    return basis


class MusicnnPredictor:
    """Decoded windows → genre probabilities with a musicnn bundle.

    Create one per process (from a :class:`~genrefy_tagger.listening.model.Bundle` or its folder)
    and call :meth:`probabilities` per track.
    """

    def __init__(self, bundle: Bundle | str | os.PathLike, *, threads: int = 1) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        meta, folder = self.bundle.meta, self.bundle.path
        if self.bundle.kind != "musicnn":
            raise BundleError(f"{folder} is not a genrefy musicnn bundle")
        try:
            self.config = MusicnnConfig(**meta["musicnn_config"])
            self.seq_len = int(meta["head"]["seq_len"])
            files = meta["files"]
            frontend, head = files["frontend_tflite"], files["head_tflite"]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{folder / 'bundle.json'} lacks a required field: {exc}") from exc
        self.genres = self.bundle.genres
        self._frontend = LiteRunner(folder / frontend, threads=threads)
        self._head = LiteRunner(folder / head, threads=threads)
        self._mel_basis = _load_mel_basis(folder, files.get("mel_basis"), self.config)

    @property
    def window(self) -> MusicnnConfig:
        return self.config

    def taggrams(self, patches: np.ndarray) -> np.ndarray:
        """(n, 187, 96) log-mel patches → (n, 50) MSD tag scores."""
        return self._frontend(patches)

    def head_probabilities(self, taggrams: np.ndarray) -> np.ndarray:
        """(n_windows, 50) time-ordered taggrams → (n_groups, n_genres) probabilities.

        Windows beyond ``seq_len`` are dealt round-robin into time-ordered groups
        (each still spread over the whole track); a group shorter than ``seq_len``
        is stretched by repeating windows — the head was trained on exactly that.
        """
        if len(taggrams) == 0:
            return np.zeros((0, len(self.genres)), dtype=np.float32)
        return self._head(head_groups(taggrams, self.seq_len))

    def probabilities(self, segments: np.ndarray) -> np.ndarray:
        """(n, config.patch_samples) windows with context → (n_groups, n_genres)."""
        return self.probabilities_and_tags(segments)[0]

    def probabilities_and_tags(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`probabilities` and the windows' mean MSD tag scores (50): what the
        front-end says beyond the genres (:mod:`genrefy_tagger.listening.outside` reads it)."""
        patches = window_patches(segments, self.config, mel_basis=self._mel_basis)
        taggrams = self.taggrams(patches)
        return self.head_probabilities(taggrams), taggrams.mean(axis=0)

    def window_probabilities(
        self, path: str | os.PathLike, *, policy: WindowPolicy
    ) -> tuple[np.ndarray, float, int]:
        """One file's probabilities as the engine computes them (for training and benches).

        Returns
        -------
        probs : np.ndarray [shape=(n_groups, len(self.genres))], float32; zero rows
            when no window is audible
        duration : float, seconds
        n_silent : int, planned windows dropped as silent
        """
        windows = read_windows(path, config=self.config, policy=policy)
        if len(windows.samples) == 0:
            return np.zeros((0, len(self.genres)), np.float32), windows.duration, windows.n_silent
        return self.probabilities(windows.samples), windows.duration, windows.n_silent


def load(bundle: Bundle, *, backend: str = "auto", threads: int = 1) -> MusicnnPredictor:
    """``backend`` is ignored: this kind runs on LiteRT only."""
    return MusicnnPredictor(bundle, threads=threads)
