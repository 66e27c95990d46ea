"""The MSD_musicnn port, its converter, the genre head and the shipped musicnn bundle."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from genrefy_tagger.reading.config import GTZAN_GENRES
from genrefy_tagger.reading.musicnn import (
    DEFAULT_CONFIG,
    head_groups,
    log_mel,
    stretch_indices,
    track_patches,
    window_patches,
)

BUNDLE = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "musicnn"


def _shared_clips(gtzan_dir: Path, split: str, genres: tuple[str, ...]) -> list[dict[str, str]]:
    with open(gtzan_dir / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fault_filtered_split"] == split]
    return [next(r for r in rows if r["genre"] == g) for g in genres]


# --------------------------------------------------------------------------- patches


def test_log_mel_matches_musicnn_recipe() -> None:
    """Our NumPy STFT + mel equals librosa's melspectrogram with musicnn's float16/log step."""
    import librosa

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    ref = np.log10(10000 * ref.astype(np.float16).astype(np.float32) + 1)
    ours = log_mel(y)
    assert ours.shape == ref.shape == (1 + len(y) // 256, 96)
    assert np.abs(ours - ref).max() < 2e-3  # float16 rounding can flip by one step


def test_window_patches_equal_track_patches() -> None:
    """A window decoded with its FFT context gives the same patch as the whole-track spectrogram."""
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(16000 * 10)).astype(np.float32)
    full = log_mel(y)
    ctx = DEFAULT_CONFIG.n_fft // 2
    start_frame = 61 * 3  # frame k is centred on sample 256 k
    s = start_frame * DEFAULT_CONFIG.hop_length
    segment = y[s - ctx : s - ctx + DEFAULT_CONFIG.patch_samples][None]
    patch = window_patches(segment)[0]
    assert np.allclose(patch, full[start_frame : start_frame + 187], atol=1e-5)
    assert np.allclose(track_patches(y)[3], patch, atol=1e-5)
    assert len(track_patches(y[:47000])) == 0


def test_head_groups_stretch_and_interleave() -> None:
    assert stretch_indices(4, 10).tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert stretch_indices(10, 10).tolist() == list(range(10))
    x = np.arange(28, dtype=np.float32)[:, None] * np.ones((1, 50), np.float32)
    groups = head_groups(x, 10)
    assert groups.shape == (3, 10, 50)
    assert groups[0, :, 0].tolist() == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]  # spread, in order
    assert groups[2, :, 0].tolist() == [2, 2, 5, 8, 11, 14, 17, 20, 23, 26]  # 9 → stretched
    assert head_groups(x[:3], 10).shape == (1, 10, 50)


# --------------------------------------------------------------------------- converter


def _tiny_checkpoint_tensors() -> dict[str, np.ndarray]:
    """Variables named and shaped like MSD_musicnn's, with tiny widths (4/2/3/5, 6 tags)."""
    from model_training.musicnn.convert import LAYER_SCOPES

    rng = np.random.default_rng(0)
    t, s, m, u, tags = 4, 2, 3, 5, 6
    front = 2 * t + 3 * s
    shapes = {
        "conv2d": (7, 38, 1, t),
        "conv2d_1": (7, 67, 1, t),
        "conv2d_2": (128, 1, 1, s),
        "conv2d_3": (64, 1, 1, s),
        "conv2d_4": (32, 1, 1, s),
        "conv2d_5": (7, front, 1, m),
        "conv2d_6": (7, m, 1, m),
        "conv2d_7": (7, m, 1, m),
        "dense": (2 * (front + 3 * m), u),
        "dense_1": (u, tags),
    }
    bn_sizes = [1, t, t, s, s, s, m, m, m, 2 * (front + 3 * m), u]
    tensors: dict[str, np.ndarray] = {}
    for scope in LAYER_SCOPES.values():
        if scope.startswith("batch_normalization"):
            i = int(scope.rsplit("_", 1)[1]) if "_" in scope[len("batch_") :] else 0
            roles = {"gamma": 1, "beta": 1, "moving_mean": 1, "moving_variance": 1}
            shape_of = {r: (bn_sizes[i],) for r in roles}
        else:
            shape_of = {"kernel": shapes[scope], "bias": (shapes[scope][-1],)}
        for role, shape in shape_of.items():
            value = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
            tensors[f"{scope}/{role}"] = value
            if role not in ("moving_mean", "moving_variance"):  # Adam slots, as in the real one
                tensors[f"{scope}/{role}/Adam"] = np.zeros(shape, np.float32)
                tensors[f"{scope}/{role}/Adam_1"] = np.zeros(shape, np.float32)
    tensors["beta1_power"] = np.float32(0.9)
    tensors["beta2_power"] = np.float32(0.999)
    return tensors


def _write_tf1_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """A V2 checkpoint with TF1-style variable names (what tf.compat.v1 Saver writes)."""
    import tensorflow as tf

    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[n]) for n in names],
    )


def test_converter_maps_every_checkpoint_variable_once(tmp_path: Path) -> None:
    from model_training.musicnn.convert import (
        MusicnnImportError,
        checkpoint_prefix,
        frontend_widths,
        map_checkpoint,
        read_checkpoint,
    )
    from model_training.musicnn.network import build_frontend

    tensors = _tiny_checkpoint_tensors()
    # Lay it out as the wheel does: empty file prefix inside musicnn/MSD_musicnn/.
    _write_tf1_checkpoint(tmp_path / "ck" / "x", tensors)
    pkg = tmp_path / "unpacked" / "musicnn" / "MSD_musicnn"
    pkg.mkdir(parents=True)
    for suffix in (".index", ".data-00000-of-00001"):
        (pkg / suffix).write_bytes((tmp_path / "ck" / f"x{suffix}").read_bytes())
    wheel = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for suffix in (".index", ".data-00000-of-00001"):
            z.write(pkg / suffix, f"musicnn/MSD_musicnn/{suffix}")

    for i, source in enumerate((tmp_path / "unpacked", wheel)):
        work = tmp_path / f"work{i}"
        work.mkdir()
        read = read_checkpoint(checkpoint_prefix(source, work))
        assert sorted(read) == sorted(tensors)
        model = build_frontend(**frontend_widths(read))
        report = map_checkpoint(read, model)
        n_model_weights = sum(len(layer.weights) for layer in model.layers)
        assert len(report.mapped) == n_model_weights == 64
        assert len(set(report.mapped.values())) == 64  # each Keras weight set once
        assert set(report.mapped) | set(report.skipped) == set(tensors)
        assert not set(report.mapped) & set(report.skipped)
        assert all(n.endswith(("/Adam", "/Adam_1")) or "power" in n for n in report.skipped)
        kernel = model.get_layer("midend_2").weights[0].numpy()
        assert np.array_equal(kernel, tensors["conv2d_6/kernel"][:, :, 0, :])
        gamma = model.get_layer("pool_bn").weights[0].numpy()
        assert np.array_equal(gamma, tensors["batch_normalization_9/gamma"])

    model = build_frontend(**frontend_widths(tensors))
    with pytest.raises(MusicnnImportError, match="not mapped"):
        map_checkpoint({**tensors, "conv2d_8/kernel": np.zeros(3, np.float32)}, model)
    missing = {k: v for k, v in tensors.items() if k != "dense/bias"}
    with pytest.raises(MusicnnImportError, match="no dense/bias"):
        map_checkpoint(missing, model)
    wrong = {**tensors, "dense_1/bias": np.zeros(7, np.float32)}
    with pytest.raises(MusicnnImportError, match="shape"):
        map_checkpoint(wrong, model)


# --------------------------------------------------------------------------- real data


@pytest.mark.shared
def test_port_reproduces_published_taggrams(gtzan_dir: Path) -> None:
    """Committed weights + our audio path ≈ the original's taggrams on real shared clips."""
    import keras

    from genrefy_tagger.reading import audio
    from model_training.musicnn.fidelity import compare, load_published, port_taggrams

    model = keras.models.load_model(BUNDLE / "frontend.keras", safe_mode=True, compile=False)
    published = {"ff_train": load_published(gtzan_dir / "musicnn_taggrams/ff_train_taggrams.npz")}
    clips = _shared_clips(gtzan_dir, "train", ("classical", "pop", "rock"))
    tracks, patches = [], []
    for row in clips:
        y = audio.load(gtzan_dir / row["path"], sample_rate=16000)
        patches.append(np.asarray(model.predict(track_patches(y), verbose=0)))
        tracks.append(row["track_id"])
    from model_training.musicnn.fidelity import Taggrams

    report = compare(Taggrams(tuple(tracks), np.zeros(3, int), tuple(patches)), published)
    assert report["n_clips"] == 3
    assert report["mae_clip_mean"] < 0.01
    assert report["mae_worst_clip"] < 0.02
    assert report["top_agreement_patch_mean"] >= 0.85
    assert report["corr_patch_mean"] > 0.99
    assert callable(port_taggrams)


@pytest.mark.shared
def test_head_trains_one_epoch_and_predicts(gtzan_dir: Path) -> None:
    from model_training.musicnn.fidelity import load_published
    from model_training.musicnn.head import (
        HeadParams,
        keras_predict,
        track_probabilities,
        train_head,
    )

    data = load_published(gtzan_dir / "musicnn_taggrams/ff_train_taggrams.npz")
    keep = np.zeros(len(data.tracks), bool)
    for c in range(len(GTZAN_GENRES)):  # 4 tracks per genre
        keep[np.flatnonzero(data.labels == c)[:4]] = True
    small = data.subset(keep)
    params = HeadParams(lstm_units=8, attention_units=4, samples_per_track=2, batch_size=16)
    model, info = train_head(params, small, epochs=1, log=lambda s: None)
    assert len(info["history"]) == 1
    probs = track_probabilities(keras_predict(model), small, params.seq_len, mode="all")
    assert probs.shape == (40, 10)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)


# --------------------------------------------------------------------------- the bundle


def test_bundle_files_and_metadata() -> None:
    meta = json.loads((BUNDLE / "bundle.json").read_text())
    assert meta["format"] == "genrefy-bundle" and meta["format_version"] == 1
    assert meta["kind"] == "musicnn"
    assert tuple(meta["genres"]) == GTZAN_GENRES
    assert meta["musicnn_config"]["sample_rate"] == 16000
    for name in meta["files"].values():
        assert (BUNDLE / name).is_file(), name
    assert "Jordi Pons and Xavier Favory" in (BUNDLE / "LICENSE-musicnn.txt").read_text()
    size = sum(p.stat().st_size for p in BUNDLE.iterdir() if p.is_file())
    assert size < 15_000_000


def test_bundle_loads_in_safe_mode() -> None:
    import keras

    front = keras.models.load_model(BUNDLE / "frontend.keras", safe_mode=True, compile=False)
    head = keras.models.load_model(BUNDLE / "head.keras", safe_mode=True, compile=False)
    assert front.output_shape == (None, 50)
    assert head.output_shape == (None, 10)


_PREDICT_SCRIPT = """
import json, sys
from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
from genrefy_tagger.listening.vote import decide
from genrefy_tagger.reading.windows import WindowPolicy
predictor = MusicnnPredictor(sys.argv[1])
probs, duration, n_silent = predictor.window_probabilities(sys.argv[2], policy=WindowPolicy())
decision = decide(probs, predictor.genres, rule=predictor.bundle.vote)
print(json.dumps({"probs": probs.tolist(), "duration": duration, "n_silent": n_silent,
                  "genre": decision.genre, "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.shared
def test_predictor_classifies_a_shared_clip(gtzan_dir: Path) -> None:
    """LiteRT end to end on a real ff-test clip with the tagger's window plan, no TensorFlow."""
    import subprocess
    import sys

    row = _shared_clips(gtzan_dir, "test", ("classical",))[0]
    run = subprocess.run(
        [sys.executable, "-c", _PREDICT_SCRIPT, str(BUNDLE), str(gtzan_dir / row["path"])],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(run.stdout.strip().splitlines()[-1])
    probs = np.asarray(out["probs"])
    assert probs.shape == (1, 10)
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert 29 < out["duration"] < 32 and out["n_silent"] == 0
    assert out["genre"] == "classical"
    assert not out["tensorflow"]  # the tagging side runs on LiteRT alone


def test_litert_files_match_keras() -> None:
    """The shipped .tflite files compute what the .keras files compute."""
    import keras

    from genrefy_tagger.listening.lite import LiteRunner

    rng = np.random.default_rng(3)
    t = np.arange(4 * 16000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    patches = track_patches(y)[:2]
    front = keras.models.load_model(BUNDLE / "frontend.keras", safe_mode=True, compile=False)
    head = keras.models.load_model(BUNDLE / "head.keras", safe_mode=True, compile=False)
    tags_keras = np.asarray(front.predict(patches, verbose=0))
    tags_lite = LiteRunner(BUNDLE / "frontend.tflite")(patches)
    # int8 convolution kernels (tests/test_musicnn_fast.py checks real clips)
    assert np.abs(tags_keras - tags_lite).max() < 0.05
    groups = head_groups(tags_lite, 10)
    assert (
        np.abs(
            np.asarray(head.predict(groups, verbose=0)) - LiteRunner(BUNDLE / "head.tflite")(groups)
        ).max()
        < 1e-4
    )


@pytest.mark.shared
def test_spread_windows_match_whole_track(gtzan_dir: Path, tmp_path: Path) -> None:
    """On a long track the predictor seeks to each window; that equals cutting the full decode."""
    import soundfile as sf

    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
    from genrefy_tagger.reading import audio, loudness
    from genrefy_tagger.reading.musicnn import read_track_windows
    from genrefy_tagger.reading.windows import WindowPolicy

    y, sr = sf.read(str(gtzan_dir / "genres/jazz/jazz.00001.ogg"), dtype="float32")
    path = tmp_path / "long.wav"  # longer than windows.TRIM_MAX_SECONDS: decoded by seeking
    sf.write(str(path), np.tile(np.concatenate([y, y[::-1]]), 2)[: 100 * sr], sr)
    segments, starts, duration, n_silent = read_track_windows(path, policy=WindowPolicy())
    assert len(segments) == 10 and duration == pytest.approx(100.0) and n_silent == 0
    assert starts[0] > 0 and np.all(np.diff(starts) > 3.0)  # spread, not back to back
    full = np.pad(audio.load(path, sample_rate=16000), (256, DEFAULT_CONFIG.patch_samples))
    cut = np.stack([full[round(s * 16000) :][: DEFAULT_CONFIG.patch_samples] for s in starts])
    levels = loudness.rms_db(cut[:, 256 : 256 + 48000])  # the same level rule as the predictor
    cut = cut * loudness.gain(levels, np.ones(len(cut), bool), loudness.TARGET_DB)
    predictor = MusicnnPredictor(BUNDLE)
    seek_tags = predictor.taggrams(window_patches(segments))
    full_tags = predictor.taggrams(window_patches(cut))
    assert np.abs(seek_tags - full_tags).mean() < 1e-3
