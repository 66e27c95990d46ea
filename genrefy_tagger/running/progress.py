"""The progress bar of a run over many files: done of the total, the rate and the time left.

Shown on a terminal only (a pipe or a log file gets none) and on stderr, so stdout keeps
only the lines a user may parse; ``quiet`` hides it. The files are counted before the
first is analysed (the walk is cheap next to listening), so the bar knows its total.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm

#: e.g. ``analysing:  40%|████      | 12/30 files [00:02<00:03, 5.01file/s]``
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} files "
    "[{elapsed}<{remaining}, {rate_fmt}]"
)


def progress_bar(total: int, *, quiet: bool = False, file: IO[str] | None = None) -> tqdm:
    """A bar over ``total`` files; disabled when ``quiet`` or when ``file`` is no terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="analysing",
        unit="file",
        bar_format=BAR_FORMAT,
        disable=quiet or None,  # None: tqdm shows it on a terminal only
        leave=False,
        file=file or sys.stderr,
        dynamic_ncols=True,
    )
