"""Where genrefy keeps its own files: the journal and the analysis cache.

``$GENREFY_STATE_DIR``, else ``$XDG_STATE_HOME/genrefy``, else ``~/.local/state/genrefy``.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("GENREFY_STATE_DIR")
    xdg = os.environ.get("XDG_STATE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore relative paths
        return Path(xdg) / "genrefy"
    return Path.home() / ".local" / "state" / "genrefy"
