"""``genrefy-train``: the command group; the commands live with their models.

* :mod:`model_training.hybrid.cli`: prepare → tune → evaluate → train → export, ``ship``;
* :mod:`model_training.musicnn.cli`: import-musicnn, musicnn-fidelity, musicnn-tune, …

Shared options are declared once in :mod:`model_training.options`.
"""

from __future__ import annotations

import os

import click

from .hybrid.cli import COMMANDS as HYBRID_COMMANDS
from .musicnn.cli import COMMANDS as MUSICNN_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train genrefy's genre models on GTZAN and export them as bundles for genrefy-tag.

    \b
    The hybrid model, one step at a time (each reads and writes files in --out):
      prepare → tune [→ tune-reseed] → evaluate → train → export    or all: ship
    The musicnn model (pretrained MSD_musicnn front-end + a trained head):
      import-musicnn → musicnn-fidelity → musicnn-tune → musicnn-head

    Run 'genrefy-train COMMAND -h' for a command's options.
    """


for _command in (*HYBRID_COMMANDS, *MUSICNN_COMMANDS):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
