"""The MSD_musicnn front-end rearranged for LiteRT's fast paths (export only).

:func:`genrefy_tagger.reading.musicnn.build_frontend` mirrors the original graph layer for
layer: its five front-end convolutions (1.3 G of its 1.4 G multiply-adds per patch)
read a single-channel log-mel image. A convolution with one input channel misses
XNNPACK's efficient kernels, float32 or int8. :func:`build_fast_frontend` computes the
same function from the same weights with the kernel taps moved into channels:

* timbral (7 × 38 and 7 × 67, "valid" over mel): gather the 38 / 67 mel bins each
  output position reads into channels, then a 7 × 1 convolution over time;
* temporal (128 / 64 / 32 × 1, "same" over time): cut time into blocks of 16 frames
  that become channels, then a convolution over blocks whose output channels are the
  16 frames of an output block (:func:`_blocked_time_conv`);
* ReLU → BatchNorm → max over mel becomes max over mel → sign → ReLU → BatchNorm on
  the 59–96 × smaller pooled tensor. Exact: BN is a per-channel affine ``a·r + b``;
  for ``a > 0`` its max is taken at the max of ``r``, for ``a < 0`` at the min, and
  ``min(x) = -max(-x)``, so the filters of channels with ``a < 0`` are negated before
  the pool and the sign restored after it.

In float32 this equals the port to ~1e-6 and is ~20 % faster. :func:`export_fast_frontend`
then stores those five kernels as per-channel int8 (:func:`quantize_conv_weights`), which
XNNPACK runs on int8 dot-product kernels: ~3× faster than the port's graph, tags within
~1e-3 of it (``bench/bench_musicnn.py`` and ``tests/test_musicnn_fast.py`` measure both).
Everything after the front-end (mid-end, pooling, back-end) is the port's own layers
with its weights, in float32. The rearranged model exists only to be exported to
``.tflite``; the Keras reference stays ``frontend.keras``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from genrefy_tagger.reading.musicnn import DEFAULT_CONFIG, MusicnnConfig

from ..litert import export_litert

#: Front-end blocks of :func:`build_frontend`, in the order of its ``frontend`` concat.
TIMBRAL = ("timbral_74", "timbral_77")
TEMPORAL = ("temporal_128", "temporal_64", "temporal_32")
#: Layer-name suffix of the rearranged front-end convolutions (the ones stored as int8).
FAST_SUFFIX = "_fast"
#: Frames per block of the temporal convolutions (8, 16 and 32 measured alike; 16 keeps
#: the block kernels' zero padding small).
DEFAULT_BLOCK = 16


def _bn_affine(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inference-time BatchNormalization as ``scale * x + shift`` (float64)."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in layer.get_weights())
    scale = gamma / np.sqrt(var + layer.epsilon)
    return scale, beta - mean * scale


def build_fast_frontend(
    port: Any, config: MusicnnConfig = DEFAULT_CONFIG, *, block: int = DEFAULT_BLOCK
) -> Any:
    """The same function as ``port`` (a :func:`build_frontend` model), rearranged.

    Input ``log_mel`` (batch, 187, 96) → ``tags`` (batch, 50), like the port.
    """
    import keras
    from keras import layers, ops

    frames, bands = config.patch_frames, config.n_mels
    get = port.get_layer
    inputs = keras.Input((frames, bands), name="log_mel")
    in_scale, in_shift = _bn_affine(get("input_bn"))
    x = inputs * float(in_scale[0]) + float(in_shift[0])  # (B, T, M)

    def pooled_tail(m: Any, name: str, sign: np.ndarray) -> Any:
        """(B, T, F) max over mel of the sign-adjusted linear conv → the port's block output."""
        scale, shift = _bn_affine(get(f"{name}_bn"))
        m = ops.relu(m * sign.astype(np.float32))
        return m * scale.astype(np.float32) + shift.astype(np.float32)

    blocks = {}
    # Timbral: time padded 3 + 3, mel "valid".
    xt = ops.pad(x, ((0, 0), (3, 3), (0, 0)))  # (B, T + 6, M)
    for name in TIMBRAL:
        kernel, bias = get(name).get_weights()  # (7, W, 1, F), (F,)
        width = kernel.shape[1]
        out_bands = bands - width + 1
        scale, _ = _bn_affine(get(f"{name}_bn"))
        sign = np.where(scale < 0, -1.0, 1.0)
        idx = np.arange(out_bands)[:, None] + np.arange(width)[None, :]  # (M', W)
        cols = ops.take(xt, idx.reshape(-1), axis=2)  # (B, T + 6, M' * W)
        cols = ops.reshape(cols, (-1, frames + 6, out_bands, width))
        y = _conv(cols, (kernel[:, :, 0, :] * sign)[:, None, :, :], bias * sign, name)
        y = layers.MaxPooling2D((1, out_bands))(y)  # XNNPACK has max pooling, not REDUCE_MAX
        y = ops.reshape(y, (-1, frames, kernel.shape[-1]))
        blocks[name] = pooled_tail(y, name, sign)

    # Temporal: "same" over time (TF pads (k - 1) // 2 before, the rest after), as a
    # convolution over blocks of ``block`` frames with the frames inside a block as channels.
    for name in TEMPORAL:
        kernel, bias = get(name).get_weights()  # (k, 1, 1, F), (F,)
        scale, _ = _bn_affine(get(f"{name}_bn"))
        sign = np.where(scale < 0, -1.0, 1.0)
        y = _blocked_time_conv(x, kernel[:, 0, 0, :] * sign, bias * sign, block, name)
        blocks[name] = pooled_tail(y, name, sign)

    front = ops.concatenate([blocks[n] for n in (*TIMBRAL, *TEMPORAL)], axis=-1)
    return keras.Model(inputs, _rest_of_port(port, front), name="msd_musicnn_rearranged")


def _blocked_time_conv(x: Any, kernel: np.ndarray, bias: np.ndarray, block: int, name: str) -> Any:
    """Max over mel of a "same" 1-D convolution over time of every mel bin, with a kernel
    ``(k, F)`` shared by all bins: (B, T, M) → (B, T, F).

    Time is cut into blocks of ``block`` frames that become channels; output frame
    ``block·b + r`` is channel group ``r`` of output block ``b``, so the kernel turns into
    ``taps`` block-kernels with weights ``w[block·j + c - r]`` (zero outside the kernel).
    """
    from keras import layers, ops

    k, filters = kernel.shape
    frames, bands = int(x.shape[1]), int(x.shape[2])
    before = (k - 1) // 2
    taps = -(-(k + block - 1) // block)
    out_blocks = -(-frames // block)
    in_blocks = out_blocks + taps - 1
    xp = ops.pad(x, ((0, 0), (before, in_blocks * block - frames - before), (0, 0)))
    xb = ops.transpose(ops.reshape(xp, (-1, in_blocks, block, bands)), (0, 1, 3, 2))
    weights = np.zeros((taps, 1, block, block, filters), np.float32)  # (j, 1, c, r, F)
    for j in range(taps):
        for c in range(block):
            for r in range(block):
                tap = block * j + c - r
                if 0 <= tap < k:
                    weights[j, 0, c, r] = kernel[tap]
    weights = weights.reshape(taps, 1, block, block * filters)
    y = _conv(xb, weights, np.tile(bias, block), name)  # (B, out_blocks, M, block * F)
    y = layers.MaxPooling2D((1, bands))(y)  # (B, out_blocks, 1, block * F)
    return ops.reshape(y, (-1, out_blocks * block, filters))[:, :frames]


def _conv(x: Any, kernel: np.ndarray, bias: np.ndarray, name: str) -> Any:
    """A linear "valid" Conv2D with these weights, named so that export quantises it."""
    from keras import layers

    conv = layers.Conv2D(kernel.shape[-1], kernel.shape[:2], name=f"{name}{FAST_SUFFIX}")
    y = conv(x)
    conv.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return y


def _rest_of_port(port: Any, front: Any) -> Any:
    """Apply the port's own mid-end and back-end layers (shared weights) to ``front``."""
    from keras import layers

    get = port.get_layer

    def midend_conv(block_in: Any, name: str) -> Any:
        y = get(f"{name}_pad")(block_in)
        return get(f"{name}_bn")(get(name)(y))

    m1 = midend_conv(front, "midend_1")
    m2 = get("midend_2_res")([midend_conv(m1, "midend_2"), m1])
    m3 = get("midend_3_res")([midend_conv(m2, "midend_3"), m2])
    dense_cat = layers.Concatenate(axis=-1)([front, m1, m2, m3])
    n_feat = int(dense_cat.shape[-1])
    mx = layers.Reshape((n_feat, 1))(layers.GlobalMaxPooling1D()(dense_cat))
    mean = layers.Reshape((n_feat, 1))(layers.GlobalAveragePooling1D()(dense_cat))
    pool = layers.Flatten()(layers.Concatenate(axis=-1)([mx, mean]))
    pool = get("pool_bn")(pool)
    hidden = get("penultimate_bn")(get("penultimate")(pool))
    return get("tags")(get("logits")(hidden))


# --------------------------------------------------------------------------- export


def quantize_conv_weights(tflite: bytes, *, suffix: str = FAST_SUFFIX) -> tuple[bytes, list[str]]:
    """Store the kernels of the ``*{suffix}`` CONV_2D ops as per-channel symmetric int8.

    This is the converter's "dynamic range" format (int8 weights with one scale per
    output channel, float activations), applied to the rearranged front-end convolutions
    only: XNNPACK runs such a convolution on int8 dot-product kernels, quantising its
    input per patch on the fly. The mid-end and back-end stay float32 — quantising
    them is what made the converter's whole-model dynamic-range export unfaithful.

    Returns the new model and the names of the weight tensors converted.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]
    done = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.CONV_2D:
            continue
        tensor = graph.tensors[op.inputs[1]]
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        layer = name.split("/")
        if not any(part.removesuffix("_1").endswith(suffix) for part in layer):
            continue
        if tensor.type != schema.TensorType.FLOAT32:
            raise ValueError(f"{name}: expected float32 weights, got type {tensor.type}")
        buffer = model.buffers[tensor.buffer]
        weights = np.frombuffer(bytes(buffer.data), np.float32).reshape(tensor.shape)  # OHWI
        scale = np.abs(weights).reshape(len(weights), -1).max(axis=1) / np.float32(127)
        scale = np.where(scale > 0, scale, 1).astype(np.float32)
        q = np.clip(np.round(weights / scale.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        buffer.data = np.frombuffer(q.tobytes(), np.uint8)
        tensor.type = schema.TensorType.INT8
        params = schema.QuantizationParametersT()
        params.scale = scale
        params.zeroPoint = np.zeros(len(scale), np.int64)
        params.quantizedDimension = 0
        tensor.quantization = params
        done.append(name)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), done


def export_fast_frontend(port: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Write the rearranged front-end of ``port`` with int8 convolution kernels to ``path``.

    Static batch of 1, like every ``.tflite`` the predictor runs.
    """

    fast = build_fast_frontend(port)
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "frontend_float.tflite"
        export_litert(fast, float_path, shape=port.input_shape[1:])
        data, names = quantize_conv_weights(float_path.read_bytes())
    expected = len(TIMBRAL) + len(TEMPORAL)
    if len(names) != expected:
        raise RuntimeError(f"quantised {len(names)} convolutions, expected {expected}: {names}")
    # Replace, never rewrite in place: a running interpreter may have the old file mapped.
    tmp_path = Path(path).with_suffix(".tflite.tmp")
    tmp_path.write_bytes(data)
    os.replace(tmp_path, path)
    return {"int8_convolutions": names, "block": DEFAULT_BLOCK}
