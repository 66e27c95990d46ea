"""MSD_musicnn's network, ported to Keras 3 (training side: import, fidelity, fast export).

The pretrained MSD_musicnn tagger (Pons & Serra, musicnn 0.1.0, ISC licence; see
``models/musicnn/LICENSE-musicnn.txt``) maps a 3-s log-mel patch
(:func:`genrefy_tagger.reading.musicnn.window_patches`) to 50 Last.fm tag scores.
:func:`build_frontend` rebuilds it layer for layer; its weights come from
``model_training``'s import of the original checkpoint. Tagging never imports
this module: it runs the exported LiteRT copy (:mod:`genrefy_tagger.listening.kinds.musicnn`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genrefy_tagger.reading.musicnn import DEFAULT_CONFIG, MusicnnConfig

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
    Layer names are the ones :mod:`model_training.musicnn.convert` maps onto.
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
