"""How genrefy reads and sets genres on beets items and albums, and how it names them.

beets changed its genre field in 2.7 (a list in ``genres``; ``genre`` is deprecated), so
every read and write of genres in the plugin goes through these few functions.
"""

from __future__ import annotations

import os
from typing import Any

from beets.library import Album, Item, LibModel
from beets.util import displayable_path

#: beets 2.7+ keeps a list in ``genres`` (``genre`` is deprecated); older beets one string.
GENRE_FIELD = "genres" if "genres" in Item._fields else "genre"
#: How pre-2.7 beets (lastgenre's default ``separator``) joins several genres in one string.
LEGACY_SEPARATOR = ", "
#: Flexible attributes the plugin owns; ``--undo`` removes all of them.
OWN_FIELDS = ("genrefy_genre", "genrefy_confidence", "genrefy_model", "genrefy_previous")


def own(obj: LibModel, key: str) -> Any:
    """A field of the object itself: an item's ``get`` would fall back to its album's."""
    return obj.get(key, with_album=False) if isinstance(obj, Item) else obj.get(key)


def current_genres(obj: LibModel) -> list[str]:
    value = own(obj, GENRE_FIELD)
    if GENRE_FIELD == "genres":
        return [g for g in (value or []) if g.strip()]
    return [value] if value and value.strip() else []


def set_genres(obj: LibModel, names: list[str]) -> None:
    obj[GENRE_FIELD] = list(names) if GENRE_FIELD == "genres" else LEGACY_SEPARATOR.join(names)


def show(names: list[str]) -> str:
    return "; ".join(names) if names else "(none)"


def item_label(item: Item) -> str:
    if item.title:
        return f"{item.artist} - {item.title}"
    return displayable_path(os.path.basename(item.path or b"?"))


def album_label(album: Album) -> str:
    artist = album.albumartist or next((item.artist for item in album.items()), "")
    return f"{artist} - {album.album}"
