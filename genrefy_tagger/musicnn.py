"""MSD_musicnn, ported to Keras 3: log-mel patches, the network, and tagging with it.

The pretrained MSD_musicnn tagger (Pons & Serra, musicnn 0.1.0, ISC licence; see
``models/musicnn/LICENSE-musicnn.txt``) maps a 3-s log-mel patch to 50 Last.fm tag
scores. This module reproduces its input pipeline and its network so that the
tagger never needs the ``musicnn`` package (nor TensorFlow) at run time:

* :func:`log_mel` / :func:`track_patches` / :func:`window_patches` — the patches;
* :func:`build_frontend` — the network as a plain Keras 3 functional model
  (weights come from ``model_training/musicnn_import.py``);
* :class:`MusicnnPredictor` — LiteRT front-end + genre head on a bounded window plan.

The genre head (BiLSTM + attention over a sequence of taggrams) is built and trained
in ``model_training/musicnn_head.py``; here is only what tagging needs to feed it
(:func:`head_groups`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import audio, loudness
from .features import window_rms_db
from .loudness import TARGET_DB
from .windows import TRIM_MAX_SECONDS, WindowPolicy, plan_starts, plan_trimmed

if TYPE_CHECKING:  # Keras (and with it TensorFlow) is only imported on the training side.
    import keras

#: MSD_musicnn's 50 output tags, in the order of its last layer.
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)  # fmt: skip

BUNDLE_KIND = "musicnn"


@dataclass(frozen=True)
class MusicnnConfig:
    """musicnn's input pipeline (``musicnn/configuration.py`` and ``extractor.batch_data``).

    A patch is ``patch_frames`` frames of a centred STFT (Hann, ``n_fft``, ``hop_length``)
    of 16-kHz mono audio, through librosa's Slaney mel filterbank (power 2), rounded to
    float16 as musicnn does, then ``log10(10000 * x + 1)`` computed in float32.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    patch_frames: int = 187  # librosa.time_to_frames(3 s) + 1
    # musicnn's input_overlap=1 s → librosa.time_to_frames(1 s) = 61 frames (0.976 s), not 62.5.
    patch_step_frames: int = 61
    log_rule: str = "log10(10000 * float32(float16(mel_power)) + 1)"
    window_seconds: float = 3.0  # what the tagger's window plan cuts
    loudness_db: float | None = TARGET_DB  # level the audible windows are brought to

    @property
    def window_samples(self) -> int:
        """Samples of one 3-s tagging window (its start is a patch's first frame centre)."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def patch_samples(self) -> int:
        """Samples one patch reads without padding: 186 hops plus one FFT frame (48,128)."""
        return (self.patch_frames - 1) * self.hop_length + self.n_fft

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CONFIG = MusicnnConfig()


# --------------------------------------------------------------------------- patches


@lru_cache(maxsize=4)
def _mel_basis(config: MusicnnConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32, librosa's default (Slaney) filterbank, as musicnn."""
    import librosa

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)


@lru_cache(maxsize=4)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (what librosa.stft's 'hann' is)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def _log_mel_frames(
    frames: np.ndarray, config: MusicnnConfig, mel_basis: np.ndarray | None = None
) -> np.ndarray:
    """(..., n_frames, n_fft) audio frames → (..., n_frames, n_mels) musicnn log-mel."""
    spectrum = np.fft.rfft(frames * _hann(config.n_fft), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ (_mel_basis(config) if mel_basis is None else mel_basis).T
    # musicnn casts to float16 before the log; the product is float32 (NumPy 1 promotion).
    mel = mel.astype(np.float16).astype(np.float32)
    return np.log10(10000.0 * mel + 1.0).astype(np.float32)


def _frame(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(n,) → (1 + (n - n_fft) // hop, n_fft) strided view of overlapping frames."""
    n = 1 + (y.shape[-1] - n_fft) // hop
    return np.lib.stride_tricks.as_strided(
        y,
        shape=(*y.shape[:-1], n, n_fft),
        strides=(*y.strides[:-1], hop * y.strides[-1], y.strides[-1]),
    )


def log_mel(y: np.ndarray, config: MusicnnConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Whole-signal log-mel spectrogram exactly as musicnn's ``batch_data`` computes it.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono float32 at ``config.sample_rate``

    Returns
    -------
    spec : np.ndarray [shape=(1 + n // hop_length, n_mels)], float32
        Centred frames; the signal is zero-padded by ``n_fft // 2`` at both ends
        (librosa ≥ 0.10's ``pad_mode="constant"``).
    """
    pad = config.n_fft // 2
    padded = np.pad(np.asarray(y, dtype=np.float32), (pad, pad))
    return _log_mel_frames(_frame(padded, config.n_fft, config.hop_length), config)


def track_patches(y: np.ndarray, config: MusicnnConfig = DEFAULT_CONFIG) -> np.ndarray:
    """All patches of a track, one every ``patch_step_frames`` (musicnn's ``input_overlap=1``).

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, patch_frames, n_mels)], float32
        Patch ``k`` starts at frame ``k * patch_step_frames``; a signal shorter than
        one patch gives ``n_patches == 0``.
    """
    spec = log_mel(y, config)
    starts = range(0, spec.shape[0] - config.patch_frames + 1, config.patch_step_frames)
    out = np.zeros((len(starts), config.patch_frames, config.n_mels), dtype=np.float32)
    for i, s in enumerate(starts):
        out[i] = spec[s : s + config.patch_frames]
    return out


def window_patches(
    segments: np.ndarray,
    config: MusicnnConfig = DEFAULT_CONFIG,
    *,
    mel_basis: np.ndarray | None = None,
) -> np.ndarray:
    """Patches of decoded windows that carry ``n_fft // 2`` samples of context each side.

    Parameters
    ----------
    segments : np.ndarray [shape=(n, config.patch_samples)]
        Audio from ``start - n_fft / 2`` samples to ``start + 3 s + n_fft / 2 - hop``;
        zeros where that runs outside the track. Frame ``j`` is then centred on
        ``start + j * hop``, exactly as in the whole-track spectrogram.
    mel_basis : np.ndarray [shape=(n_mels, n_fft // 2 + 1)], optional
        librosa's filterbank for ``config`` as a bundle ships it (``mel_basis.npy``);
        None computes it, importing librosa (~1 s, once per process).

    Returns
    -------
    patches : np.ndarray [shape=(n, patch_frames, n_mels)], float32
    """
    segments = np.ascontiguousarray(segments, dtype=np.float32)
    if segments.ndim != 2 or segments.shape[1] != config.patch_samples:
        raise ValueError(f"expected segments (n, {config.patch_samples}), got {segments.shape}")
    return _log_mel_frames(_frame(segments, config.n_fft, config.hop_length), config, mel_basis)


# --------------------------------------------------------------------------- network


def build_frontend(
    config: MusicnnConfig = DEFAULT_CONFIG,
    *,
    timbral_filters: int = 204,
    temporal_filters: int = 51,
    midend_filters: int = 64,
    backend_units: int = 200,
    n_tags: int = 50,
) -> keras.Model:
    """MSD_musicnn (``musicnn/models.py: build_musicnn``) as a Keras 3 functional model.

    Input ``log_mel`` (batch, 187, 96); output ``tags`` (batch, n_tags) sigmoid scores.
    NHWC: time is the height axis, mel bands the width axis, as in the original
    (``tf.expand_dims(x, 3)``). Every BatchNormalization keeps TF1's epsilon 1e-3
    and runs on its moving statistics at inference; dropout is inactive there.
    The widths default to MSD_musicnn's (``int(1.6 * 128)``, ``int(1.6 * 32)``, 64, 200);
    they are parameters only so that tests can convert a tiny synthetic checkpoint.
    Layer names are the ones :mod:`model_training.musicnn_import` maps onto.
    """
    import keras
    from keras import layers

    frames, bands = config.patch_frames, config.n_mels
    inputs = keras.Input((frames, bands), name="log_mel")
    x = layers.Reshape((frames, bands, 1), name="expand")(inputs)
    x = layers.BatchNormalization(epsilon=1e-3, name="input_bn")(x)

    def pooled(block_in: Any, filters: int, kernel: tuple[int, int], padding: str, name: str):
        """conv → ReLU → BN → max over all remaining mel bins → (batch, frames, filters)."""
        y = layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=name)(block_in)
        y = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(y)
        width = int(y.shape[2])
        y = layers.MaxPooling2D((1, width), name=f"{name}_pool")(y)
        return layers.Reshape((frames, filters), name=f"{name}_squeeze")(y)

    # Timbral filters span 7 frames × 40 % / 70 % of the mel axis; the original pads
    # only time (3 + 3) and convolves "valid", so the mel axis shrinks to 59 / 30.
    timbral_in = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    f74 = pooled(timbral_in, timbral_filters, (7, int(0.4 * bands)), "valid", "timbral_74")
    f77 = pooled(timbral_in, timbral_filters, (7, int(0.7 * bands)), "valid", "timbral_77")
    # Temporal filters: 1 mel bin × 128 / 64 / 32 frames, "same" (TF's 63 / 64 split).
    s1 = pooled(x, temporal_filters, (128, 1), "same", "temporal_128")
    s2 = pooled(x, temporal_filters, (64, 1), "same", "temporal_64")
    s3 = pooled(x, temporal_filters, (32, 1), "same", "temporal_32")
    front = layers.Concatenate(axis=-1, name="frontend")([f74, f77, s1, s2, s3])  # (T, 561)

    # Mid-end: the original's conv2d with a kernel as wide as its input, then transposed,
    # is a 1-D convolution over time with the feature axis as channels.
    def midend_conv(block_in: Any, name: str):
        y = layers.ZeroPadding1D(3, name=f"{name}_pad")(block_in)
        y = layers.Conv1D(midend_filters, 7, padding="valid", activation="relu", name=name)(y)
        return layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(y)

    m1 = midend_conv(front, "midend_1")
    m2 = layers.Add(name="midend_2_res")([midend_conv(m1, "midend_2"), m1])
    m3 = layers.Add(name="midend_3_res")([midend_conv(m2, "midend_3"), m2])
    dense_cat = layers.Concatenate(axis=-1, name="midend")([front, m1, m2, m3])  # (T, 753)

    # Back-end: max and mean over time, flattened the way the original does it — its
    # (753, 2) stack flattens to [max_0, mean_0, max_1, mean_1, …].
    n_feat = int(dense_cat.shape[-1])
    mx = layers.Reshape((n_feat, 1), name="max_pool")(layers.GlobalMaxPooling1D()(dense_cat))
    mean = layers.Reshape((n_feat, 1), name="mean_pool")(layers.GlobalAveragePooling1D()(dense_cat))
    pool = layers.Flatten(name="pool_flat")(layers.Concatenate(axis=-1)([mx, mean]))
    pool = layers.BatchNormalization(epsilon=1e-3, name="pool_bn")(pool)
    pool = layers.Dropout(0.5, name="pool_dropout")(pool)
    hidden = layers.Dense(backend_units, activation="relu", name="penultimate")(pool)
    hidden = layers.BatchNormalization(epsilon=1e-3, name="penultimate_bn")(hidden)
    hidden = layers.Dropout(0.5, name="penultimate_dropout")(hidden)
    logits = layers.Dense(n_tags, name="logits")(hidden)
    tags = layers.Activation("sigmoid", name="tags")(logits)
    return keras.Model(inputs, tags, name="msd_musicnn")


# --------------------------------------------------------------------------- tagging side


def read_track_windows(
    path: str | os.PathLike,
    *,
    policy: WindowPolicy,
    config: MusicnnConfig = DEFAULT_CONFIG,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Decode the planned 3-s windows of a file (with FFT context) and drop the silent ones.

    Uses :func:`genrefy_tagger.windows.plan_starts`, so the tagger looks at the same
    bounded number of windows whatever the model.

    Returns
    -------
    segments : np.ndarray [shape=(n_audible, config.patch_samples)], float32
        Input of :func:`window_patches`.
    starts : np.ndarray [shape=(n_audible,)], window starts in seconds
    duration : float, seconds
    n_silent : int, planned windows dropped because quieter than ``policy.silence_db``
    """
    info = audio.probe(path)
    sr, win = config.sample_rate, config.window_samples
    ctx = config.n_fft // 2
    n_edge, offset = 0, 0
    if info.duration <= TRIM_MAX_SECONDS:  # short track: decode once, cut the silent edges
        y = audio.load(path, sample_rate=sr, info=info)
        duration = len(y) / sr  # decoded, not the probe's estimate
        body, starts, offset, n_edge = plan_trimmed(
            y, sample_rate=sr, window_seconds=config.window_seconds, policy=policy
        )
        padded = np.pad(body, (ctx, config.patch_samples))
        at = [int(round(s * sr)) for s in starts]
        segments = np.stack([padded[a : a + config.patch_samples] for a in at]) if at else (
            np.zeros((0, config.patch_samples), np.float32))  # fmt: skip
    else:  # long track: seek to each window, decoding the FFT context with it
        starts = plan_starts(info.duration, window_seconds=config.window_seconds, policy=policy)
        segments = audio.load_segments(
            path,
            [s - ctx / sr for s in starts],
            seconds=config.patch_samples / sr,
            sample_rate=sr,
            info=info,
        )
        duration = info.duration
    starts_arr = np.asarray(starts, dtype=np.float64) + offset / sr
    if not len(segments):
        return segments, starts_arr, duration, n_edge
    levels = window_rms_db(segments[:, ctx : ctx + win])
    keep = loudness.audible(levels, floor_db=policy.silence_db)
    scale = np.float32(loudness.gain(levels, keep, config.loudness_db))
    return segments[keep] * scale, starts_arr[keep], duration, int((~keep).sum()) + n_edge


def stretch_indices(n: int, length: int) -> np.ndarray:
    """Time-ordered indices that stretch ``n`` items to ``length`` by repeating some.

    ``n = 4, length = 10`` → ``[0 0 0 1 1 2 2 2 3 3]``-like: every item kept, in order,
    each repeated about equally. Requires ``1 <= n <= length``.
    """
    if not 1 <= n <= length:
        raise ValueError(f"cannot stretch {n} items to {length}")
    return np.floor(np.arange(length) * n / length).astype(np.int64)


def head_groups(taggrams: np.ndarray, seq_len: int) -> np.ndarray:
    """Time-ordered windows → fixed-length head inputs.

    Parameters
    ----------
    taggrams : np.ndarray [shape=(n, n_tags)], n >= 1, in time order

    Returns
    -------
    groups : np.ndarray [shape=(ceil(n / seq_len), seq_len, n_tags)], float32
        ``n <= seq_len``: one group, stretched by :func:`stretch_indices`. Otherwise
        window ``i`` goes to group ``i % n_groups``, so every group spans the whole
        track in time order (as the tagger's spread windows do); each group is then
        stretched to ``seq_len``.
    """
    taggrams = np.asarray(taggrams, dtype=np.float32)
    n = len(taggrams)
    n_groups = -(-n // seq_len)
    out = []
    for g in range(n_groups):
        member = taggrams[g::n_groups]
        out.append(member[stretch_indices(len(member), seq_len)])
    return np.stack(out)


def _load_mel_basis(bundle_dir: Path, name: str | None, config: MusicnnConfig) -> np.ndarray | None:
    """The bundle's copy of librosa's mel filterbank (None: compute it with librosa).

    Tagging would otherwise import librosa (and with it SciPy's signal module and numba)
    in every worker just for this one (96, 257) matrix: ~1 s per process.
    """
    from .model import BundleError

    if name is None:
        return None
    try:
        basis = np.load(bundle_dir / name, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {bundle_dir / name}: {exc}") from exc
    if basis.shape != (config.n_mels, config.n_fft // 2 + 1) or basis.dtype != np.float32:
        raise BundleError(f"{bundle_dir / name}: {basis.dtype} {basis.shape} is not the filterbank")
    return basis


class _Lite:
    """One LiteRT interpreter with a static batch of 1: rows in, rows out."""

    def __init__(self, path: Path, threads: int) -> None:
        from .model import lite_interpreter

        self._interp = lite_interpreter(path, threads=threads)
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, *input_shape[1:]) → (n, *output_shape[1:]) float32, one invoke per row."""
        out = np.zeros((len(x), *self._out["shape"][1:]), dtype=np.float32)
        for i in range(len(x)):
            self._interp.set_tensor(self._in["index"], x[i : i + 1].astype(np.float32))
            self._interp.invoke()
            out[i] = self._interp.get_tensor(self._out["index"])[0]
        return out


class MusicnnPredictor:
    """Audio file → genre probabilities with the musicnn bundle, on LiteRT only.

    No TensorFlow or Keras import: 3-s windows → :func:`window_patches` → the LiteRT
    front-end (50 tag scores per window) → the LiteRT head over groups of windows.
    Create one per process and call :meth:`window_probabilities` per file.
    """

    def __init__(self, bundle_dir: str | os.PathLike, *, threads: int = 1) -> None:
        from .model import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, BundleError

        self.bundle_dir = Path(bundle_dir)
        meta_path = self.bundle_dir / "bundle.json"
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read {meta_path}: {exc}") from exc
        if (
            self.meta.get("format") != BUNDLE_FORMAT
            or self.meta.get("format_version") != BUNDLE_FORMAT_VERSION
            or self.meta.get("kind") != BUNDLE_KIND
        ):
            raise BundleError(f"{meta_path} is not a genrefy musicnn bundle (format version 1)")
        self.config = MusicnnConfig(**self.meta["musicnn_config"])
        self.genres: tuple[str, ...] = tuple(self.meta["genres"])
        self.vote: str = self.meta.get("vote", "mean")
        self.min_confidence = float(self.meta.get("min_confidence", 0.0))
        self.seq_len = int(self.meta["head"]["seq_len"])
        files = self.meta["files"]
        self._frontend = _Lite(self.bundle_dir / files["frontend_tflite"], threads)
        self._head = _Lite(self.bundle_dir / files["head_tflite"], threads)
        self._mel_basis = _load_mel_basis(self.bundle_dir, files.get("mel_basis"), self.config)

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

    def window_probabilities(
        self, path: str | os.PathLike, *, policy: WindowPolicy
    ) -> tuple[np.ndarray, float, int]:
        """Genre probabilities of one file from the same bounded window plan as the tagger.

        Returns
        -------
        probs : np.ndarray [shape=(n_groups, len(self.genres))], float32, rows sum to 1
            One row per group of up to ``seq_len`` audible windows (1 group with the
            default ``max_windows=10``); zero rows when no window is audible.
            Vote with ``vote.decide(probs, genres, rule=self.vote)``.
        duration : float, seconds
        n_silent : int, planned windows dropped as silent
        """
        segments, _, duration, n_silent = read_track_windows(
            path, policy=policy, config=self.config
        )
        tags = self.taggrams(window_patches(segments, self.config, mel_basis=self._mel_basis))
        return self.head_probabilities(tags), duration, n_silent
