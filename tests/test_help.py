"""The help of every command stays what it was: ``genrefy-tag``, ``genrefy-train`` and each
``genrefy-train`` command, compared with the text stored in ``tests/data/help/``.

A refactor (moving modules, say) must not change what a user reads. A change to an option
or to the shipped models' defaults (the help names their thresholds) changes it on purpose:
then record the new text and review the diff with ``git diff tests/data/help``::

    .venv/bin/python tests/test_help.py record
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

STORED = Path(__file__).parent / "data" / "help"
ROOT = Path(__file__).resolve().parents[1]


def same(text: str) -> str:
    """What must not change: the text, less white space. A default that is a path in the
    checkout shows where the checkout is; its length moves click's line breaks, and click
    may break the path itself at a hyphen (``/work/ci-`` + newline + ``check``)."""
    return "".join(text.split()).replace("".join(str(ROOT).split()), "<checkout>")


def helps() -> dict[str, str]:
    """Each command's ``--help``, as an 80-column terminal shows it."""
    from genrefy_tagger.cli import main as tag
    from model_training.cli import main as train

    def show(command: click.Command, args: list[str], prog: str) -> str:
        result = CliRunner().invoke(command, [*args, "--help"], prog_name=prog, terminal_width=80)
        assert result.exit_code == 0, result.output
        return result.output

    out = {
        "genrefy-tag": show(tag, [], "genrefy-tag"),
        "genrefy-train": show(train, [], "genrefy-train"),
    }
    for name in sorted(train.commands):
        out[f"genrefy-train {name}"] = show(train, [name], "genrefy-train")
    return out


def _file(name: str) -> Path:
    return STORED / (name.replace(" ", "_") + ".txt")


@pytest.mark.parametrize("name", sorted(p.stem.replace("_", " ") for p in STORED.glob("*.txt")))
def test_help_is_unchanged(name: str) -> None:
    assert same(helps()[name]) == same(_file(name).read_text(encoding="utf-8"))


def test_every_command_has_a_stored_help() -> None:
    assert sorted(helps()) == sorted(p.stem.replace("_", " ") for p in STORED.glob("*.txt"))


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    STORED.mkdir(parents=True, exist_ok=True)
    for old in STORED.glob("*.txt"):
        old.unlink()
    for name, text in helps().items():
        _file(name).write_text(text.replace(str(ROOT), "<checkout>"), encoding="utf-8")
    print(f"recorded {len(helps())} help texts in {STORED}")
