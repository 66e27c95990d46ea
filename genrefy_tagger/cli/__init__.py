"""The command lines: genrefy-tag (command.py: its options; console.py: what a run prints) and
what beet genrefy does to a library (library_tagging.py)."""

# ``genrefy-tag = genrefy_tagger.cli:main`` and ``from genrefy_tagger.cli import main``
# predate this package: they stay valid.
from .command import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, main

__all__ = ["EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_STOPPED", "EXIT_USAGE", "main"]
