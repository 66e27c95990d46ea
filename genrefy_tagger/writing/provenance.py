"""genrefy's provenance field: which model wrote which genres, how sure, and when.

``genrefy;model=…;confidence=0.873;genres=Rock|Pop;date=2026-11-25T16:40:00Z``,
stored beside the genre in every format (see ``tags.py``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from datetime import datetime, timezone

_PROVENANCE_PREFIX = "genrefy"
# Escaped in provenance values so that ";" and "|" stay separators and NUL or a
# line break never reaches a tag (ID3 would read a NUL as a second value).
_ESCAPES = str.maketrans(
    {"%": "%25", ";": "%3B", "|": "%7C", "\n": "%0A", "\r": "%0D", "\0": "%00"}
)


def format_provenance(
    model: str, confidence: float, genres: Sequence[str], when: datetime | None = None
) -> str:
    """``genrefy;model=…;confidence=0.873;genres=Rock|Pop;date=2026-11-25T16:40:00Z``."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    fields = {
        "model": model.translate(_ESCAPES),
        "confidence": f"{confidence:.3f}",
        "genres": "|".join(g.translate(_ESCAPES) for g in genres),
        "date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return ";".join([_PROVENANCE_PREFIX] + [f"{k}={v}" for k, v in fields.items()])


def parse_provenance(text: str) -> dict[str, str]:
    """The fields of a provenance string, unescaped; {} for anything else.

    ``genres`` stays one "|"-separated string. A "|" inside a genre name is stored
    escaped but comes back as "|", so only such (unusual) names split ambiguously.
    """
    if not isinstance(text, str):
        return {}
    head, _, rest = text.strip().partition(";")
    if head != _PROVENANCE_PREFIX:
        return {}
    fields = {}
    for item in rest.split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            fields[key.strip()] = urllib.parse.unquote(value)
    return fields
