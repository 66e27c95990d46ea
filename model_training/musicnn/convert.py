"""musicnn's MSD_musicnn TF1 checkpoint → our Keras 3 port (weights + LiteRT export).

The checkpoint in the musicnn 0.1.0 wheel (``musicnn/MSD_musicnn/``) was written by a
``tf.compat.v1.train.Saver`` with an *empty* file prefix (``.index``,
``.data-00000-of-00001``) and a ``checkpoint`` file pointing at the author's machine,
so it is copied under a real prefix before ``tf.train.load_checkpoint`` reads it.

Its 150 variables are 64 network variables, mapped here one-to-one onto the
Keras model's 64 weights, and 86 Adam optimiser slots (``*/Adam``, ``*/Adam_1``,
``beta1_power``, ``beta2_power``) that inference does not use. :func:`map_checkpoint`
refuses to convert unless every checkpoint variable is accounted for exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genrefy_tagger.reading.musicnn import DEFAULT_CONFIG, MusicnnConfig
from model_training.musicnn.network import build_frontend

from .fast import export_fast_frontend

if TYPE_CHECKING:
    import keras

MODEL_NAME = "MSD_musicnn"
FRONTEND_KERAS = "frontend.keras"
FRONTEND_TFLITE = "frontend.tflite"
MEL_BASIS_FILE = "mel_basis.npy"
LICENSE_FILE = "LICENSE-musicnn.txt"

#: Keras layer → TF1 variable scope, in the order musicnn's ``build_musicnn`` creates them
#: (``tf.compat.v1.layers`` numbers each layer class in graph-construction order).
LAYER_SCOPES: dict[str, str] = {
    "input_bn": "batch_normalization",
    "timbral_74": "conv2d",
    "timbral_74_bn": "batch_normalization_1",
    "timbral_77": "conv2d_1",
    "timbral_77_bn": "batch_normalization_2",
    "temporal_128": "conv2d_2",
    "temporal_128_bn": "batch_normalization_3",
    "temporal_64": "conv2d_3",
    "temporal_64_bn": "batch_normalization_4",
    "temporal_32": "conv2d_4",
    "temporal_32_bn": "batch_normalization_5",
    "midend_1": "conv2d_5",
    "midend_1_bn": "batch_normalization_6",
    "midend_2": "conv2d_6",
    "midend_2_bn": "batch_normalization_7",
    "midend_3": "conv2d_7",
    "midend_3_bn": "batch_normalization_8",
    "pool_bn": "batch_normalization_9",
    "penultimate": "dense",
    "penultimate_bn": "batch_normalization_10",
    "logits": "dense_1",
}

#: Keras layers whose TF1 kernel is a width-spanning conv2d (7, F, 1, out) that the port
#: runs as a Conv1D with kernel (7, F, out).
CONV1D_LAYERS = ("midend_1", "midend_2", "midend_3")

#: Optimiser state in the checkpoint; training-only, deliberately not converted.
OPTIMISER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMISER_NAMES = ("beta1_power", "beta2_power", "global_step")

ISC_NOTICE = """\
MSD_musicnn weights (converted to Keras 3 / LiteRT by genrefy's import-musicnn)

From musicnn 0.1.0 (https://github.com/jordipons/musicnn), by Jordi Pons and Xavier Favory;
the model was trained by Jordi Pons at the Music Technology Group, Universitat Pompeu Fabra.
Reference: J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for
music audio tagging", ISMIR 2019 late-breaking/demo.

ISC License

Copyright (c) 2019, Jordi Pons and Xavier Favory
(musicnn 0.1.0 wheel: Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019.
Code developed by Jordi Pons (www.jordipons.me).)

Permission to use, copy, modify, and/or distribute this software for any purpose with or
without fee is hereby granted, provided that the above copyright notice and this permission
notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS
SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE
AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT,
NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THIS SOFTWARE.
"""


class MusicnnImportError(Exception):
    """A checkpoint that does not fit the port (missing, extra or mis-shaped variables)."""


@dataclass
class MappingReport:
    """What :func:`map_checkpoint` did with each checkpoint variable."""

    mapped: dict[str, str] = field(default_factory=dict)  # checkpoint name → keras weight path
    skipped: list[str] = field(default_factory=list)  # optimiser state
    n_params: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_checkpoint_variables": len(self.mapped) + len(self.skipped),
            "n_mapped": len(self.mapped),
            "n_skipped_optimiser": len(self.skipped),
            "n_params": self.n_params,
            "mapped": self.mapped,
        }


# --------------------------------------------------------------------------- reading


def checkpoint_prefix(source: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Find MSD_musicnn's checkpoint in a wheel / unpacked folder; copy it under a real prefix.

    ``source`` may be the ``.whl`` file, the unpacked wheel, its ``musicnn/`` package
    folder, or the ``MSD_musicnn/`` folder itself. Returns ``workdir/MSD_musicnn`` — a
    prefix for ``tf.train.load_checkpoint``.
    """
    source, workdir = Path(source), Path(workdir)
    prefix = workdir / MODEL_NAME
    wanted = {".index": ".index", ".data-00000-of-00001": ".data-00000-of-00001"}
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            for member, suffix in wanted.items():
                name = f"musicnn/{MODEL_NAME}/{member}"
                try:
                    data = wheel.read(name)
                except KeyError as exc:
                    raise MusicnnImportError(f"{source} has no {name}") from exc
                (workdir / f"{MODEL_NAME}{suffix}").write_bytes(data)
        return prefix
    for folder in (source, source / MODEL_NAME, source / "musicnn" / MODEL_NAME):
        if (folder / ".index").is_file():
            for member, suffix in wanted.items():
                shutil.copyfile(folder / member, workdir / f"{MODEL_NAME}{suffix}")
            return prefix
    raise MusicnnImportError(f"no {MODEL_NAME} checkpoint (.index/.data) found in {source}")


def read_checkpoint(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint, by name, as NumPy arrays."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {
        name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()
    }


# --------------------------------------------------------------------------- mapping


def frontend_widths(tensors: Mapping[str, np.ndarray]) -> dict[str, int]:
    """The layer widths a checkpoint implies (keyword arguments of ``build_frontend``)."""
    try:
        return {
            "timbral_filters": int(tensors["conv2d/kernel"].shape[-1]),
            "temporal_filters": int(tensors["conv2d_2/kernel"].shape[-1]),
            "midend_filters": int(tensors["conv2d_5/kernel"].shape[-1]),
            "backend_units": int(tensors["dense/kernel"].shape[-1]),
            "n_tags": int(tensors["dense_1/kernel"].shape[-1]),
        }
    except KeyError as exc:
        raise MusicnnImportError(f"checkpoint lacks {exc}: not a musicnn checkpoint") from exc


def _is_optimiser(name: str) -> bool:
    return name.endswith(OPTIMISER_SUFFIXES) or name in OPTIMISER_NAMES


def map_checkpoint(tensors: Mapping[str, np.ndarray], model: keras.Model) -> MappingReport:
    """Assign every network variable of the checkpoint to exactly one Keras weight.

    Raises :class:`MusicnnImportError` when a Keras weight has no checkpoint variable, a
    checkpoint variable is neither mapped nor optimiser state, one is used twice, or
    a shape does not match. Returns the mapping, checkpoint name → Keras weight path.
    """
    report = MappingReport()
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in LAYER_SCOPES:
            raise MusicnnImportError(
                f"Keras layer {layer.name!r} has weights but no checkpoint scope"
            )
        scope = LAYER_SCOPES[layer.name]
        values = []
        for weight in layer.weights:
            role = weight.path.rsplit("/", 1)[-1]  # gamma, beta, moving_mean, kernel, …
            name = f"{scope}/{role}"
            if name not in tensors:
                raise MusicnnImportError(f"checkpoint has no {name} for {weight.path}")
            if name in used:
                raise MusicnnImportError(f"checkpoint variable {name} mapped twice")
            value = np.asarray(tensors[name], dtype=np.float32)
            if layer.name in CONV1D_LAYERS and role == "kernel":
                if value.ndim != 4 or value.shape[2] != 1:
                    raise MusicnnImportError(f"{name}: expected (7, F, 1, out), got {value.shape}")
                value = value[:, :, 0, :]  # (7, F, 1, out) → Conv1D's (7, F, out)
            if tuple(value.shape) != tuple(weight.shape):
                raise MusicnnImportError(
                    f"{name} has shape {value.shape}, {weight.path} needs {tuple(weight.shape)}"
                )
            values.append(value)
            used.add(name)
            report.mapped[name] = weight.path
            report.n_params += int(value.size)
        layer.set_weights(values)
    leftovers = sorted(set(tensors) - used)
    unknown = [n for n in leftovers if not _is_optimiser(n)]
    if unknown:
        raise MusicnnImportError(f"checkpoint variables not mapped onto the port: {unknown}")
    report.skipped = leftovers
    return report


# --------------------------------------------------------------------------- export


def write_mel_basis(out_dir: str | os.PathLike, config: MusicnnConfig = DEFAULT_CONFIG) -> Path:
    """Save librosa's mel filterbank for ``config`` beside the front-end (plain ``.npy``).

    The tagger loads it instead of importing librosa in every worker process.
    """
    from genrefy_tagger.reading.musicnn import _mel_basis

    path = Path(out_dir) / MEL_BASIS_FILE
    np.save(path, np.asarray(_mel_basis(config), np.float32), allow_pickle=False)
    return path


def import_musicnn(
    source: str | os.PathLike, out_dir: str | os.PathLike, *, tflite: bool = True
) -> dict[str, Any]:
    """Convert the checkpoint in ``source`` and write the front-end into ``out_dir``.

    Writes ``frontend.keras`` (safe-mode loadable), ``frontend.tflite`` and the ISC
    notice ``LICENSE-musicnn.txt``; returns the mapping report (also written to
    ``out_dir/report/import.json``).
    """
    out_dir = Path(out_dir)
    (out_dir / "report").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tensors = read_checkpoint(checkpoint_prefix(source, tmp))
    model = build_frontend(DEFAULT_CONFIG, **frontend_widths(tensors))
    report = map_checkpoint(tensors, model)
    model.save(out_dir / FRONTEND_KERAS)
    if tflite:  # the rearranged int8-kernel graph (model_training/musicnn/fast.py)
        export_fast_frontend(model, out_dir / FRONTEND_TFLITE)
    write_mel_basis(out_dir)
    (out_dir / LICENSE_FILE).write_text(ISC_NOTICE, encoding="utf-8")
    result = {"source": Path(source).name, "model": MODEL_NAME, **report.to_dict()}
    (out_dir / "report" / "import.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def reexport_frontend(bundle: Path) -> tuple[dict[str, Any], float]:
    """Re-export ``frontend.tflite`` (the fast int8 graph) from ``frontend.keras``, and the
    mel basis. Returns the export's info and the largest LiteRT − Keras difference on 4
    random patches."""
    import keras

    from genrefy_tagger.listening.lite import LiteRunner

    port = keras.models.load_model(bundle / FRONTEND_KERAS, safe_mode=True, compile=False)
    info = export_fast_frontend(port, bundle / FRONTEND_TFLITE)
    write_mel_basis(bundle)
    rng = np.random.default_rng(0)
    patches = (rng.random((4, *port.input_shape[1:])) * 4).astype(np.float32)
    diff = np.abs(LiteRunner(bundle / FRONTEND_TFLITE)(patches) - port.predict(patches, verbose=0))
    return info, float(diff.max())
