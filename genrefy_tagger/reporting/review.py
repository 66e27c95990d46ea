"""The review page: one self-contained HTML file to read, listen to and correct a run.

``--report review.html`` writes it. Everything is inline (CSS, JavaScript, the
SVG chart and the rows as JSON), so it works from ``file://`` with no network.
Each row links its audio with a path relative to the page (``preload="none"``:
nothing loads until you press play). The page's "Download plan" button saves the
rows, with your choices, in the JSON report format that ``--apply`` reads.

A path that is not valid UTF-8 is kept exactly in the rows' JSON (so the downloaded
plan names the same file), shown with ``\\xNN`` escapes and linked with its bytes
percent-encoded (:mod:`genrefy_tagger.fsnames`).

The template is ``review.html`` beside this module; placeholders are ``__NAME__``.
"""

from __future__ import annotations

import contextlib
import html
import os
import urllib.parse
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from ..fsnames import json_text, shown

ACTION_LABELS = {
    "tag": "would tag",
    "unsure": "unsure",
    "unchanged": "unchanged",
    "failed": "failed",
    "skipped": "skipped",  # a card only when some file was (see _cards)
}


def write_page(path: str | os.PathLike, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Render the page for ``rows`` (``Row.as_dict()`` each) and write it atomically."""
    path = Path(path)
    page = render_page(rows, meta, page_dir=Path(os.path.abspath(path)).parent)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # e.g. a full disk: leave no half page behind
        raise
    return path


def render_page(rows: list[dict[str, Any]], meta: dict[str, Any], *, page_dir: Path) -> str:
    root = meta.get("root")
    views = [_view(row["path"], root, page_dir) for row in rows]
    labels = dict(ACTION_LABELS, tag="would tag" if meta.get("dry_run", True) else "tagged")
    template = resources.files(__package__).joinpath("review.html").read_text(encoding="utf-8")
    parts = {
        "__TITLE__": html.escape(shown(Path(root).name) if root else "genres"),
        "__SUBTITLE__": _subtitle(len(rows), meta),
        "__CARDS__": _cards(rows, labels),
        "__CHART__": genre_chart(rows),
        "__DATA__": _script_json({"meta": meta, "rows": rows, "view": views}),
    }
    for key, value in parts.items():
        template = template.replace(key, value)
    return template


def _view(path: str, root: str | None, page_dir: Path) -> dict[str, str]:
    """How the page shows a file (relative to the folder given) and links it (relative to
    the page, percent-encoded, forward slashes)."""
    rel = path
    if root:
        candidate = os.path.relpath(path, root)
        if not candidate.startswith(os.pardir):
            rel = candidate
    link = os.path.relpath(path, page_dir)
    # quote() of the bytes: %E9 for a byte that is not UTF-8, the same as before for the rest.
    src = "/".join(urllib.parse.quote(os.fsencode(part)) for part in Path(link).parts)
    return {"rel": shown(rel.replace(os.sep, "/")), "src": src}


def _subtitle(n: int, meta: dict[str, Any]) -> str:
    root = html.escape(shown(str(meta.get("root", ""))))
    bits = [f"{n} file{'s' if n != 1 else ''} in <code>{root}</code>"]
    if meta.get("model"):
        bits.append(f"model <b>{html.escape(str(meta['model']))}</b>")
    if meta.get("min_confidence") is not None:
        bits.append(f"threshold {float(meta['min_confidence']):.0%}")
    if meta.get("top_k", 1) != 1:
        bits.append(f"top {int(meta['top_k'])} genres")
    if meta.get("created"):
        bits.append(html.escape(str(meta["created"]).replace("T", " ").replace("+00:00", " UTC")))
    return " · ".join(bits)


def _cards(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    counts = Counter(r["action"] for r in rows)
    return "".join(
        f'<button type="button" class="card {a}" data-action="{a}">'
        f"<b>{counts.get(a, 0)}</b><span>{html.escape(label)}</span></button>"
        for a, label in labels.items()
        if a != "skipped" or counts.get(a)
    )


def genre_chart(rows: list[dict[str, Any]], *, width: int = 560) -> str:
    """Inline SVG: one horizontal bar per proposed genre, split into would-tag and unsure."""
    tagged: Counter[str] = Counter()
    unsure: Counter[str] = Counter()
    for r in rows:
        if r["proposed"] and r["action"] in ("tag", "unsure"):
            (tagged if r["action"] == "tag" else unsure)[r["proposed"][0]] += 1
    genres = sorted(set(tagged) | set(unsure), key=lambda g: (-(tagged[g] + unsure[g]), g))
    if not genres:
        return '<p class="legend">No genre proposed.</p>'
    bar_h, gap, label_w, count_w = 15, 5, 96, 44
    height = len(genres) * (bar_h + gap)
    most = max(tagged[g] + unsure[g] for g in genres)
    scale = (width - label_w - count_w) / most
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Proposed genres" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, g in enumerate(genres):
        y = i * (bar_h + gap)
        w_tag, w_unsure = tagged[g] * scale, unsure[g] * scale
        name = html.escape(g)
        out.append(
            f'<g class="bar-row" data-genre="{name}">'
            f'<text x="{label_w - 8}" y="{y + 12}" text-anchor="end">{name}</text>'
            f'<rect class="b-tag" x="{label_w}" y="{y}" width="{w_tag:.1f}" height="{bar_h}" '
            f'rx="3"><title>{name}: {tagged[g]} would tag</title></rect>'
            f'<rect class="b-unsure" x="{label_w + w_tag:.1f}" y="{y}" width="{w_unsure:.1f}" '
            f'height="{bar_h}" rx="3"><title>{name}: {unsure[g]} unsure</title></rect>'
            f'<text class="n" x="{label_w + w_tag + w_unsure + 6:.1f}" y="{y + 12}">'
            f"{tagged[g] + unsure[g]}</text></g>"
        )
    out.append("</svg>")
    out.append(
        '<div class="legend"><i style="background:var(--accent)"></i>above the threshold'
        '<i style="background:var(--unsure);opacity:.55"></i>unsure (below it)</div>'
    )
    return "".join(out)


def _script_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json_text(data, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
