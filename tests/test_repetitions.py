"""Repeated recordings and unlisted artists are kept out of training (model_training).

Songs are synthesised here (random melodies over one shared drum pattern, so different
songs line up their beats the way same-tempo GTZAN songs do) and written as real files;
the last test reads the shared GTZAN clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model_training import plan as splitting
from model_training.artists import names, read_artists, unsafe_unlisted
from model_training.dataset import Clip
from model_training.repetitions import (
    SR,
    Repetition,
    find_repetitions,
    redundant,
    repetitions_of,
)

SECONDS = 16.0


def song(seed: int, *, sr: int = 22050) -> np.ndarray:
    """A melody of random notes (one every 0.25 s) over a fixed 120-bpm drum pattern."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * sr)) / sr
    notes = 220.0 * 2 ** (rng.integers(0, 24, size=int(SECONDS * 4) + 1) / 12)
    f = notes[(t * 4).astype(int)]
    melody = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr)
    drums = rng.standard_normal(len(t)) * np.exp(-((t % 0.5) * 30))
    return (melody + 0.2 * drums).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Clip]:
    """pop.00001: a song; pop.00002: the same recording 0.3 s later, 9 dB down, low-passed
    at 4 kHz, as FLAC; pop.00003, rock.00001: other songs on the same beat. (Lossy copies
    are covered by the shared clips, all Ogg Vorbis: white-noise drums like these lose
    their fine structure in Vorbis, which real recordings do not.)"""
    from scipy.signal import butter, sosfilt

    root = tmp_path_factory.mktemp("songs")
    a = song(1)
    shifted = np.concatenate([np.zeros(int(0.3 * 22050), np.float32), a])[: len(a)]
    low = sosfilt(butter(4, 4000, fs=22050, output="sos"), shifted) * 10 ** (-9 / 20)
    audio = {"pop.00001": (a, "WAV"), "pop.00002": (low.astype(np.float32), "FLAC"),
             "pop.00003": (song(2), "WAV"), "rock.00001": (song(3), "OGG")}  # fmt: skip
    out = []
    for tid, (y, fmt) in audio.items():
        path = root / f"{tid}.{fmt.lower()}"
        sf.write(path, y, 22050, format=fmt)
        out.append(Clip(tid, tid.split(".")[0], path))
    return out


def test_a_re_encoded_shifted_quieter_copy_is_found_and_other_songs_are_not(clips, tmp_path):
    found = repetitions_of(clips, cache_dir=tmp_path, progress=False)
    assert [(r.a, r.b) for r in found] == [("pop.00001", "pop.00002")]
    assert found[0].score > 0.8 and found[0].lag_s == pytest.approx(0.3, abs=0.05)
    # The answer is cached, keyed on the clips: a second call reads it back.
    assert len(list(tmp_path.glob("repetitions-*.json"))) == 1
    assert repetitions_of(clips, cache_dir=tmp_path, progress=False) == found


def test_unreadable_clips_are_left_out_of_the_comparison(clips, tmp_path):
    broken = tmp_path / "pop.00009.wav"
    broken.write_bytes(b"RIFF junk")
    with_broken = [*clips, Clip("pop.00009", "pop", broken)]
    found = repetitions_of(with_broken, cache_dir=tmp_path, progress=False)
    assert [(r.a, r.b) for r in found] == [("pop.00001", "pop.00002")]


def test_find_repetitions_reads_each_clip_once(clips):
    import librosa

    reads = []

    def load(tid: str) -> np.ndarray:
        reads.append(tid)
        path = next(c.path for c in clips if c.track_id == tid)
        return librosa.load(path, sr=SR, mono=True)[0]

    ids = [c.track_id for c in clips]
    assert len(find_repetitions(ids, load)) == 1 and sorted(reads) == sorted(ids)


def test_each_recording_keeps_its_copy_in_the_most_valuable_role():
    reps = [Repetition("jazz.00033", "jazz.00051", 0.99, 0), Repetition("pop.1", "pop.2", 1, 0),
            Repetition("pop.2", "pop.3", 0.9, 0), Repetition("pop.8", "pop.9", 0.9, 0)]  # fmt: skip
    roles = {"jazz.00033": "none", "jazz.00051": "train", "pop.1": "none", "pop.2": "train",
             "pop.3": "test", "pop.8": None, "pop.9": None}  # fmt: skip
    assert redundant(reps, roles) == {
        "jazz.00033": "jazz.00051",
        "pop.1": "pop.3",  # grouped through pop.2
        "pop.2": "pop.3",
        "pop.9": "pop.8",  # no roles known: the lowest id stays
    }


def test_artist_credits_name_every_artist():
    assert names("Christina Aguilera, Lil' Kim, Mya & Pink") == {
        "christina aguilera", "lil' kim", "mya", "pink"}  # fmt: skip
    assert names("Dr. Dre feat. Snoop Dogg") == {"dr. dre", "snoop dogg"}


def _clip(tid: str, role: str) -> Clip:
    return Clip(tid, tid.split(".")[0], Path(tid), None, role)


def test_unlisted_clips_of_scored_or_unknown_artists_are_not_trained_on():
    clips = [_clip("pop.00067", "none"), _clip("pop.00071", "test"), _clip("pop.00048", "none"),
             _clip("pop.00053", "valid"), _clip("pop.00052", "none"), _clip("jazz.00033", "none"),
             _clip("pop.00001", "train")]  # fmt: skip
    artists = {"pop.00067": "Janet Jackson", "pop.00071": "Janet Jackson",
               "pop.00053": "Destiny's Child", "pop.00052": "Beyoncé & Destiny's Child",
               "jazz.00033": "Coleman Hawkins", "pop.00001": "Janet Jackson"}  # fmt: skip
    unsafe = unsafe_unlisted(clips, artists)
    assert unsafe.keys() == {"pop.00067", "pop.00048", "pop.00052"}
    assert "pop.00071 is in ff-test" in unsafe["pop.00067"]
    assert "unknown" in unsafe["pop.00048"]
    # Listed training clips are the lists' business: an ff-train clip by a test artist stays.
    left = splitting.left_out(clips, "fault-filtered+unlisted", [], artists)
    assert left == unsafe
    assert splitting.left_out(clips, "fault-filtered", [], artists) == {}  # no unlisted used


def test_left_out_clips_get_no_role_in_any_split():
    clips = [_clip(f"{g}.{i:05d}", ("train", "valid", "test", "none")[i % 4])
             for g in ("pop", "jazz") for i in range(40)]  # fmt: skip
    left = {"pop.00003": "in no list and its artist is unknown",
            "pop.00004": "repeats the recording of pop.00002 (test)"}  # fmt: skip
    for split in ("kfold", "fault-filtered+unlisted", "fault-filtered"):
        plan = splitting.make_plan(clips, split, k=5, left_out=left)
        used = set(plan.train) | set(plan.valid) | set(plan.test)
        used |= {t for fold in plan.folds for side in fold for t in side}
        assert not used & set(left) and plan.left_out == left
        assert splitting.Plan.from_dict(plan.to_dict()) == plan
    plan.train.append("pop.00004")
    with pytest.raises(AssertionError, match="left-out"):
        plan.check()


def test_packaged_artists_cover_every_shared_evaluation_and_unlisted_clip(gtzan_dir: Path):
    import csv

    with open(gtzan_dir / "manifest.csv", newline="") as f:
        roles = {r["track_id"]: r["fault_filtered_split"] for r in csv.DictReader(f)}
    known = read_artists()
    # Five clips have no Shazam identification in gtzan-bind (pop.00014, pop.00048,
    # pop.00063, metal.00039, country.00044). rock.00049's one match ("Gabriel Marchisio",
    # a dance track, at a time skew 70x the others') is not trusted: the split keeps it in
    # ff-valid beside Simple Minds and away from ff-test's Led Zeppelin, nothing more.
    missing = {t for t, r in roles.items() if r != "train" and t not in known}
    assert missing == {"pop.00014", "pop.00048", "pop.00063", "metal.00039", "country.00044",
                       "rock.00049"}  # fmt: skip


@pytest.mark.slow
def test_shared_clips_repeat_test_and_valid_recordings_and_plans_leave_them_out(
    gtzan_dir: Path, tmp_path: Path
):
    from model_training.dataset import discover

    clips = discover(gtzan_dir, check_audio=False).clips
    found = repetitions_of(clips, cache_dir=tmp_path, progress=False)
    pairs = {(r.a, r.b) for r in found}
    # Unlisted copies of an ff-test and an ff-valid recording, and 13 of ff-train jazz.
    assert {("pop.00067", "pop.00071"), ("pop.00087", "pop.00090"), ("pop.00054", "pop.00060"),
            ("jazz.00033", "jazz.00051")} <= pairs  # fmt: skip
    assert len(found) == 22 and min(r.score for r in found) > 0.8
    left = splitting.left_out(clips, "kfold", found, read_artists())
    plan = splitting.make_plan(clips, "kfold", k=5, left_out=left)
    heard = set(plan.development())
    for r in found:
        assert not {r.a, r.b} <= heard | set(plan.test)
    assert {"pop.00067", "pop.00068", "pop.00087", "country.00008"} <= set(left)
    # 583 clips: 161 in ff-test, 422 for development, 26 of them left out.
    assert len(left) == 26 and len(heard) == 422 - 26
