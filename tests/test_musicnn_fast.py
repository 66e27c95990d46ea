"""The fast tagging path of the musicnn bundle computes what the Keras port computes.

The shipped ``frontend.tflite`` is the port rearranged for XNNPACK with int8
convolution kernels (``model_training/musicnn/fast.py``); the tagger also loads the
mel filterbank from the bundle and reads a long file's windows through one decoder.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audiofiles import make_audio

from genrefy_tagger.listening.lite import LiteRunner
from genrefy_tagger.reading.musicnn import DEFAULT_CONFIG, window_patches

BUNDLE = Path(__file__).resolve().parents[1] / "genrefy_tagger" / "models" / "musicnn"


def _valid_clips(gtzan_dir: Path, per_genre: int) -> list[dict[str, str]]:
    """The first ``per_genre`` shared ff-valid clips of each genre (validation data only)."""
    with open(gtzan_dir / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fault_filtered_split"] == "valid"]
    out: list[dict[str, str]] = []
    for genre in sorted({r["genre"] for r in rows}):
        out += [r for r in rows if r["genre"] == genre][:per_genre]
    return out


@pytest.fixture(scope="module")
def port():
    import keras

    return keras.models.load_model(BUNDLE / "frontend.keras", safe_mode=True, compile=False)


@pytest.fixture(scope="module")
def valid_patches(gtzan_dir: Path) -> list[tuple[str, np.ndarray]]:
    """(genre, patches) of 2 ff-valid clips per genre, through the tagger's window plan."""
    from genrefy_tagger.reading.musicnn import read_track_windows
    from genrefy_tagger.reading.windows import WindowPolicy

    out, policy = [], WindowPolicy(max_windows=6)
    for row in _valid_clips(gtzan_dir, 2):
        segments = read_track_windows(gtzan_dir / row["path"], policy=policy)[0]
        out.append((row["genre"], window_patches(segments)))
    return out


@pytest.mark.shared
def test_rearranged_graph_is_the_port_in_float(port, valid_patches) -> None:
    """Gathered taps, blocked time convolution, BN after the pool: the same function."""
    from model_training.musicnn.fast import build_fast_frontend

    patches = np.concatenate([p for _, p in valid_patches[::4]])
    fast = build_fast_frontend(port)
    diff = np.abs(fast.predict(patches, verbose=0) - port.predict(patches, verbose=0))
    assert diff.max() < 1e-5


@pytest.mark.shared
def test_shipped_frontend_matches_keras_on_real_clips(port, valid_patches) -> None:
    """int8 kernels: tags within ~1e-3 of the port; same top tag (bar near-ties), same genre."""
    from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor

    lite = LiteRunner(BUNDLE / "frontend.tflite")
    predictor = MusicnnPredictor(BUNDLE)
    errors, genre_same = [], []
    for _, patches in valid_patches:
        ref = port.predict(patches, verbose=0)
        ours = lite(patches)
        errors.append(np.abs(ours - ref))
        # The clip's top MSD tag, unless two tags are within the int8 error of a tie.
        lead = np.diff(np.sort(ref.mean(0))[-2:])[0]
        assert ours.mean(0).argmax() == ref.mean(0).argmax() or lead < 0.02
        p_ref = predictor.head_probabilities(ref).mean(0)
        p_ours = predictor.head_probabilities(ours).mean(0)
        genre_same.append(p_ref.argmax() == p_ours.argmax())
        assert np.abs(p_ref - p_ours).max() < 0.1
    err = np.concatenate(errors)
    assert err.mean() < 2e-3  # the port itself is 2.1e-3 from the original code's output
    assert err.max() < 0.06
    assert all(genre_same), f"{genre_same.count(False)} of {len(genre_same)} clips changed genre"


def test_only_the_frontend_convolutions_are_int8() -> None:
    """The mid-end and back-end stay float32 (quantising them is what broke fidelity)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(BUNDLE / "frontend.tflite"))
    graph = model.subgraphs[0]
    kinds = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.FULLY_CONNECTED):
            weights = graph.tensors[op.inputs[1]]
            scale = weights.quantization.scale if weights.quantization is not None else None
            kinds.append((weights.type, 0 if scale is None else len(scale)))
    int8 = [k for k in kinds if k[0] == schema.TensorType.INT8]
    assert len(int8) == 5  # timbral 74/77, temporal 128/64/32
    assert all(n_scales > 1 for _, n_scales in int8)  # per output channel
    assert len(kinds) - len(int8) == 5  # 3 mid-end convolutions, 2 dense layers in float32
    assert all(t == schema.TensorType.FLOAT32 for t, _ in kinds if t != schema.TensorType.INT8)


def test_shipped_mel_basis_is_librosas() -> None:
    import librosa

    meta = json.loads((BUNDLE / "bundle.json").read_text())
    basis = np.load(BUNDLE / meta["files"]["mel_basis"], allow_pickle=False)
    c = DEFAULT_CONFIG
    ref = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels)
    assert basis.dtype == np.float32 and np.array_equal(basis, ref)


_TAG_SCRIPT = """
import json, sys
from genrefy_tagger.listening.kinds.musicnn import MusicnnPredictor
from genrefy_tagger.reading.windows import WindowPolicy
p = MusicnnPredictor(sys.argv[1])
probs, _, _ = p.window_probabilities(sys.argv[2], policy=WindowPolicy(max_windows=6))
print(json.dumps({"shape": list(probs.shape),
                  "heavy": sorted(m for m in ("librosa", "scipy", "numba", "tensorflow")
                                  if m in sys.modules)}))
"""


def test_tagging_imports_neither_librosa_nor_tensorflow(tmp_path: Path) -> None:
    """A worker loads LiteRT, NumPy and the decoders only (librosa cost ~1 s per process)."""
    path = make_audio(tmp_path / "song.mp3", seconds=40.0)
    run = subprocess.run(
        [sys.executable, "-c", _TAG_SCRIPT, str(BUNDLE), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["shape"] == [1, 10]
    assert out["heavy"] == []


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "wav"])
def test_segments_through_one_handle_equal_the_full_decode(tmp_path: Path, ext: str) -> None:
    """Seeking one open decoder from window to window lands on the same samples."""
    from genrefy_tagger.reading import audio

    path = make_audio(tmp_path / f"long.{ext}", seconds=50.0, sample_rate=22050)
    starts = [2.5, 9.0, 17.25, 30.0, 44.5]
    # At the file's own rate (no resampling): the very samples of the full decode.
    full = audio.load(path, sample_rate=22050)
    segments = audio.load_segments(path, starts, seconds=3.0, sample_rate=22050)
    for start, seg in zip(starts, segments, strict=True):
        at = int(start * 22050)
        assert np.abs(seg - full[at : at + len(seg)]).max() < 1e-6
    # At the model's rate: what opening the file again for every segment gave.
    segments = audio.load_segments(path, starts, seconds=3.008, sample_rate=16000)
    per_segment = np.stack(
        [audio.load(path, sample_rate=16000, offset=s, duration=3.008)[:48128] for s in starts]
    )
    assert np.abs(segments - per_segment).max() < 1e-6
