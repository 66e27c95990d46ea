"""Music outside the ten genres: the default model abstains and says what it sounds like.

Real bundle (the shipped ``musicnn``), real audio: previews from ``../shared/allmusic``
whose AllMusic genres are none of the ten (Celia Cruz's salsa, Bill Hicks' stand-up,
Diego Torres' Latin pop — each written as Jazz, Hip-Hop or Blues at 88-91 % before the
rule) and a GTZAN hip-hop clip that must still be tagged.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genrefy_tagger.cli import main
from genrefy_tagger.listening.engine import Analyzer
from genrefy_tagger.listening.model import BundleError, load_bundle
from genrefy_tagger.listening.outside import OutsideRule, mostly_outside

OUTSIDE = {
    "MT0002053300": "Celia Cruz, El Pescador (Latin)",
    "MT0007697753": "Bill Hicks, The Elephant Is Dead (Comedy/Spoken)",
    "MT0005550441": "Diego Torres, Penélope (Latin)",
}
INSIDE = "hiphop.00002"
REASON = re.compile(r"^sounds like [a-z ]+, which is not one of its genres$")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, allmusic_dir: Path, gtzan_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("outside")
    # copyfile, not copy: the shared clips are read-only, and a read-only file is skipped.
    for clip in OUTSIDE:
        shutil.copyfile(allmusic_dir / "clips" / f"{clip}.mp3", folder / f"{clip}.mp3")
    shutil.copyfile(gtzan_dir / "genres" / "hiphop" / f"{INSIDE}.ogg", folder / f"{INSIDE}.ogg")
    return folder


def _rows(library: Path, tmp_path: Path, *args: str) -> dict[str, dict]:
    report = tmp_path / "plan.json"
    result = CliRunner().invoke(
        main, ["--dry-run", "-j", "1", "--report", str(report), *args, str(library)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["rows"]
    return {Path(r["path"]).stem: r for r in rows} | {"_output": result.output}


def test_outside_music_is_left_unsure_and_says_why(library: Path, tmp_path: Path):
    rows = _rows(library, tmp_path)
    for clip, what in OUTSIDE.items():
        row = rows[clip]
        assert row["action"] == "unsure", (what, row)
        assert REASON.match(row["reason"]), (what, row["reason"])
        assert row["reason"] in rows["_output"]  # the console says it too
    assert rows[INSIDE]["action"] == "tag"
    assert rows[INSIDE]["proposed"] == ["Hip-Hop"]


def test_the_csv_report_and_the_review_page_say_why(library: Path, tmp_path: Path):
    import csv
    import html

    reasons = {Path(r["path"]).stem: r["reason"] for r in _rows(library, tmp_path).values()
               if isinstance(r, dict)}  # fmt: skip
    for name in ("plan.csv", "review.html"):
        out = tmp_path / name
        result = CliRunner().invoke(
            main, ["--dry-run", "-j", "1", "--report", str(out), str(library)]
        )
        assert result.exit_code == 0, result.output
        if name.endswith(".csv"):
            with open(out, newline="", encoding="utf-8") as f:
                got = {Path(r["path"]).stem: r["reason"] for r in csv.DictReader(f)}
            assert all(got[c] == reasons[c] for c in OUTSIDE)
        else:
            page = html.unescape(out.read_text(encoding="utf-8"))
            assert all(json.dumps(reasons[c]) in page for c in OUTSIDE)


def test_a_second_run_from_the_cache_gives_the_same_reasons(library: Path, tmp_path: Path):
    first = _rows(library, tmp_path)
    again = _rows(library, tmp_path)  # every file now comes from the analysis cache
    for clip in (*OUTSIDE, INSIDE):
        assert (again[clip]["action"], again[clip]["reason"]) == (
            first[clip]["action"],
            first[clip]["reason"],
        )


def test_min_confidence_zero_writes_every_pick(library: Path, tmp_path: Path):
    from genrefy_tagger.writing.id3v1 import NO_TAG

    rows = _rows(library, tmp_path, "--min-confidence", "0")
    assert rows[INSIDE]["action"] == "tag"
    # The previews are store MP3s with no tag and no length header: the pick stands, and
    # the file is left alone for that reason alone (genrefy_tagger/writing/id3v1.py).
    for clip in OUTSIDE:
        assert rows[clip]["proposed"] and (rows[clip]["action"], rows[clip]["reason"]) == (
            "skipped",
            NO_TAG,
        )


def test_the_rule_is_plain_json_and_scores_as_the_tagger_decides(library: Path):
    """Training reads the tagger's own evidence (min-confidence 0, no rule) and scores it
    with the rule: the same verdict as the tagger with its defaults."""
    bundle = load_bundle("musicnn")
    rule = OutsideRule.from_meta(bundle.meta)
    assert rule is not None
    again = OutsideRule.from_meta(
        {**bundle.meta, "outside": json.loads(json.dumps(rule.to_meta()))}
    )
    plain, judged = Analyzer("musicnn", min_confidence=0.0), Analyzer("musicnn")
    for path in sorted(library.iterdir()):
        evidence, decided = plain.analyse(path), judged.analyse(path)
        assert evidence.tags is not None and evidence.tags.shape == (50,)
        pooled = np.array([dict(evidence.decision.ranked)[g] for g in bundle.genres])
        score = rule.score(evidence.tags, pooled)
        assert again.score(evidence.tags, pooled) == pytest.approx(score)
        assert bool(decided.decision.outside) == (score >= rule.threshold)
        assert not evidence.decision.outside


def test_a_malformed_rule_is_a_bundle_error(tmp_path: Path):
    meta = load_bundle("musicnn").meta
    broken = {**meta, "outside": {**meta["outside"], "coef": [0.0, 1.0]}}
    with pytest.raises(BundleError, match="outside"):
        OutsideRule.from_meta(broken)
    assert OutsideRule.from_meta(load_bundle("hybrid").meta) is None  # no rule: nothing changes


def test_an_album_mostly_outside_the_genres_is_not_voted_into_one(library: Path):
    """``beet genrefy -a``: tracks that sound like none of the genres do not elect one."""
    analyzer = Analyzer("musicnn")
    decisions = {p.stem: analyzer.analyse(p).decision for p in sorted(library.iterdir())}
    assert mostly_outside(list(decisions.values())) in {d.outside for d in decisions.values()}
    assert mostly_outside([decisions[INSIDE]]) is None
