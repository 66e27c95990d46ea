"""Training genrefy's genre models: ``genrefy-train`` (see ``docs/training.md``).

Two models, one sub-package each: :mod:`~model_training.hybrid` (CNN + BiLSTM +
attention over window features) and :mod:`~model_training.musicnn` (pretrained
MSD_musicnn front-end + a genre head). What both use sits here: ``dataset`` (find
clips) and ``plan`` (split them by track), ``evaluate`` (metrics, plots),
``calibration`` (thresholds, temperature), ``production_augment``, ``litert``
(the ``.tflite`` export), ``options`` (shared command-line options); ``cli`` is
the command group.
"""
