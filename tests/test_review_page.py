"""The review page in a real browser: headless Chromium, driven by Selenium, asserting on the DOM.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Absent,
these tests skip with the reason — unless ``GENREFY_REQUIRE_BROWSER=1`` (set by
``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
from audiofiles import make_audio
from reviewlib import digest, make_library, tag

from genrefy_tagger.writing.tags import read_tags

ODD = 'A&B <i>x<b> \'s "best" #1 100%'
ARGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
    "--autoplay-policy=no-user-gesture-required",
)


def _need(reason: str):
    if os.environ.get("GENREFY_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (GENREFY_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    chrome = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver_path = shutil.which("chromedriver")
    if chrome is None or driver_path is None:
        _need("headless Chromium not found: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium is not installed (pip install -e '.[test]')")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ARGS:
        options.add_argument(arg)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never tries to download one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    """A real dry run's review page, written in a folder beside the library."""
    base = tmp_path_factory.mktemp("review")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENREFY_STATE_DIR", str(base / "state"))
        library = make_library(base / "Music")
        # Characters that must be escaped in HTML and percent-encoded in the audio link.
        make_audio(library / "Artist 1" / f"{ODD}.flac", seconds=6.5, seed=7)
        html = base / "reports" / "review.html"
        result = tag("--dry-run", "--min-confidence", "0", "--report", str(html), str(library))
        assert result.exit_code == 1, result.output  # the broken file
        yield library, html


def visible_rows(driver) -> list:
    return driver.find_elements("css selector", "#rows tr")


def embedded(driver) -> dict:
    return json.loads(driver.find_element("id", "plan").get_attribute("textContent"))


def downloaded(target: Path, *, timeout: float = 10.0) -> str:
    """The text of a finished download: Chrome may show the final name while the
    file is still empty, so wait until it holds a whole JSON document."""
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        if target.exists():
            text = target.read_text()
            try:
                json.loads(text)
                return text
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    pytest.fail(f"no complete download at {target} after {timeout} s (last read {len(text)} chars)")


def test_page_shows_every_row_summary_and_chart(browser, page):
    library, html = page
    browser.get(html.as_uri())
    data = embedded(browser)
    rows = data["rows"]
    assert len(visible_rows(browser)) == len(rows) == 8
    cards = {
        c.get_attribute("data-action"): int(c.find_element("tag name", "b").text)
        for c in browser.find_elements("css selector", ".card")
    }
    assert cards == {"tag": 5, "unsure": 1, "unchanged": 1, "failed": 1}
    proposed = {r["proposed"][0] for r in rows if r["proposed"] and r["action"] != "unchanged"}
    bars = browser.find_elements("css selector", "svg .bar-row")
    assert {b.get_attribute("data-genre") for b in bars} == proposed
    names = [e.text for e in browser.find_elements("css selector", "#rows .name")]
    assert "00 song.mp3" in names and "broken.mp3" in names and f"{ODD}.flac" in names
    assert browser.find_element("id", "count").text == "showing 8 of 8"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_audio_links_are_relative_lazy_and_play(browser, page):
    library, html = page
    browser.get(html.as_uri())
    audios = browser.find_elements("css selector", "#rows audio")
    assert len(audios) == 8
    for audio in audios:
        assert audio.get_attribute("preload") == "none"
        src = audio.get_attribute("src")  # resolved by the browser against the page
        assert not re.match(r"^(https?:|/)", browser.execute_script(
            "return arguments[0].getAttribute('src')", audio))  # fmt: skip
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(src).path))
        assert path.is_file() and library in path.parents
    row = next(r for r in visible_rows(browser) if r.get_attribute("data-path").endswith("%.flac"))
    row.find_element("css selector", ".play").click()
    audio = row.find_element("tag name", "audio")
    deadline = time.time() + 10
    while time.time() < deadline:
        state = browser.execute_script(
            "const a = arguments[0]; return [a.readyState, a.duration, a.error && a.error.code];",
            audio,
        )
        if state[0] >= 1:
            break
        time.sleep(0.1)
    assert state[2] is None and state[0] >= 1 and abs(state[1] - 6.5) < 0.2, state
    assert "playing" in row.get_attribute("class")


def test_filters_search_and_sort(browser, page):
    library, html = page
    browser.get(html.as_uri())
    from selenium.webdriver.support.ui import Select

    browser.find_element("id", "search").send_keys("song.flac")
    assert [r.find_element("css selector", ".name").text for r in visible_rows(browser)] == [
        "01 song.flac"
    ]
    browser.find_element("id", "search").clear()
    browser.execute_script("document.getElementById('search').dispatchEvent(new Event('input'))")
    Select(browser.find_element("id", "action")).select_by_value("unsure")
    rows = visible_rows(browser)
    assert len(rows) == 1 and "silence.flac" in rows[0].get_attribute("data-path")
    assert rows[0].find_element("css selector", ".badge").text == "unsure"
    Select(browser.find_element("id", "action")).select_by_value("")
    data = embedded(browser)
    genre = data["rows"][0]["proposed"][0]
    Select(browser.find_element("id", "genre")).select_by_value(genre)
    expected = [r["path"] for r in data["rows"] if genre in r["proposed"] + r["current"]]
    assert [r.get_attribute("data-path") for r in visible_rows(browser)] == expected
    Select(browser.find_element("id", "genre")).select_by_value("")
    Select(browser.find_element("id", "sort")).select_by_value("conf-desc")
    order = [int(r.get_attribute("data-index")) for r in visible_rows(browser)]
    confidences = [data["rows"][i]["confidence"] for i in order]
    numbers = [c for c in confidences if c is not None]
    assert numbers == sorted(numbers, reverse=True) and confidences[0] == max(numbers)


def test_edits_download_a_plan_that_applies_and_undoes(browser, page):
    library, html = page
    browser.get(html.as_uri())
    from selenium.webdriver.support.ui import Select

    rows = {r.get_attribute("data-path"): r for r in visible_rows(browser)}
    mp3 = str(library / "Artist 0" / "00 song.mp3")
    flac = str(library / "Artist 1" / "01 song.flac")
    silent = str(library / "Quiet" / "silence.flac")
    # Correct one genre, skip one proposal, and give the unsure file a genre by hand.
    field = rows[mp3].find_element("css selector", ".genre-input")
    field.clear()
    field.send_keys("Jazz; Blues")
    Select(rows[flac].find_element("css selector", ".choice")).select_by_value("skip")
    rows[silent].find_element("css selector", ".genre-input").send_keys("Ambient")
    assert browser.find_element("id", "changes").text == "5 to write, 2 edited"
    browser.find_element("id", "download").click()
    target = browser.downloads / "genrefy-plan.json"
    plan = json.loads(downloaded(target))

    original = {r["path"]: r for r in embedded(browser)["rows"]}
    got = {r["path"]: r for r in plan["rows"]}
    assert got.keys() == original.keys() and plan["root"] == str(library)
    assert got[mp3]["action"] == "tag" and got[mp3]["proposed"] == ["Jazz", "Blues"]
    assert got[mp3]["edited"] is True
    assert got[flac]["action"] == "skip" and got[flac]["proposed"] == original[flac]["proposed"]
    assert got[silent]["action"] == "tag" and got[silent]["proposed"] == ["Ambient"]
    for path, row in got.items():
        if path not in (mp3, flac, silent):
            assert {k: v for k, v in row.items() if k != "edited"} == original[path]

    before = digest(library)
    applied = tag("--apply", str(target))
    assert applied.exit_code == 0, applied.output
    assert "8 rows: 5 tagged, 0 unchanged, 0 skipped, 3 left alone" in applied.output
    assert read_tags(mp3).genres == ("Jazz", "Blues") and read_tags(mp3).provenance is None
    assert read_tags(silent).genres == ("Ambient",)
    accepted = str(library / "Artist 0" / "02 song.ogg")
    assert read_tags(accepted).genres == tuple(original[accepted]["proposed"])
    assert "model=gtzan-hybrid@" in read_tags(accepted).provenance
    after = digest(library)
    assert after["Artist 1/01 song.flac"] == before["Artist 1/01 song.flac"]
    journal = next(line.split()[1] for line in applied.output.splitlines() if "journal:" in line)
    undone = tag("--undo", journal)
    restored = [line for line in undone.output.splitlines() if line.startswith("restored ")]
    assert undone.exit_code == 0 and len(restored) == 5
    assert all(read_tags(p).genres == () for p in (mp3, silent, accepted))


def test_a_file_left_alone_on_purpose_shows_as_skipped(browser, tmp_path, monkeypatch):
    from selenium.webdriver.support.ui import Select

    monkeypatch.setenv("GENREFY_STATE_DIR", str(tmp_path / "state"))
    song = make_audio(tmp_path / "Music" / "song.mp3", seconds=6.5, seed=3)
    make_audio(tmp_path / "Music" / "other.flac", seconds=6.5, seed=4)
    os.link(song, tmp_path / "seeding copy.mp3")
    html = tmp_path / "review.html"
    result = tag("--dry-run", "--min-confidence", "0", "--report", str(html),
                 str(tmp_path / "Music"))  # fmt: skip
    assert result.exit_code == 0, result.output
    browser.get(html.as_uri())
    cards = {
        c.get_attribute("data-action"): int(c.find_element("tag name", "b").text)
        for c in browser.find_elements("css selector", ".card")
    }
    assert cards == {"tag": 1, "unsure": 0, "unchanged": 0, "failed": 0, "skipped": 1}
    Select(browser.find_element("id", "action")).select_by_value("skipped")
    rows = visible_rows(browser)
    assert len(rows) == 1 and rows[0].get_attribute("data-path").endswith("song.mp3")
    assert rows[0].find_element("css selector", ".badge").text == "skipped"
    assert "has 2 hard links" in rows[0].text
