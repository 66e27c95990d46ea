"""A stand-in for the engine's worker function that really kills its worker process.

Used by tests/test_isolation.py to inject a crash (as a segfaulting decoder or the
OOM killer would cause) for files whose name contains ``crash``; every other file
is analysed by the real worker function. It lives in its own module so that worker
processes can import it.
"""

from __future__ import annotations

import os
from pathlib import Path


def analyse_or_die(path: str):
    if "crash" in Path(path).name:
        os._exit(70)
    from genrefy_tagger.listening import engine

    return engine._analyse_in_worker(path)
