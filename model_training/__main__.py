"""``python -m model_training`` is ``genrefy-train``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .cli import main  # noqa: E402

main(prog_name="genrefy-train")
