"""The training package: features, discovery, splits, and a tiny end-to-end run.

Everything here uses short real audio files written on the fly (``make_audio``),
except the tests marked ``shared``, which read one real GTZAN clip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audiofiles import make_audio, signal

from genrefy_tagger.reading.config import GTZAN_GENRES, FeatureConfig
from genrefy_tagger.reading.features import window_features
from genrefy_tagger.reading.windows import WindowPolicy, read_windows
from model_training import dataset
from model_training import plan as splitting
from model_training.hybrid import augment, cache

ROOT = Path(__file__).resolve().parents[1]
CONFIG = FeatureConfig()


def _write_au(path: Path, seconds: float, seed: int = 0) -> Path:
    """An ``.au`` file (the original GTZAN format); make_audio has no AU writer."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    data = signal(seconds=seconds, sample_rate=22050, channels=1, seed=seed)
    sf.write(str(path), data, 22050, format="AU", subtype="PCM_16")
    return path


def _engine_features(path: Path) -> np.ndarray:
    """Features exactly as the tagger computes them (default policy: 10 windows)."""
    windows = read_windows(path, config=CONFIG, policy=WindowPolicy())
    return window_features(windows.samples, config=CONFIG)


# --- features ---------------------------------------------------------------------------------


def test_training_features_shape_dtype_and_determinism(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "song.flac", seconds=10.0)
    first = cache.tagging_features(path, config=CONFIG)
    assert first.shape == (3, CONFIG.n_frames, CONFIG.n_features) == (3, 130, 102)
    assert first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, cache.tagging_features(path, config=CONFIG))


@pytest.mark.parametrize("ext", ["wav", "ogg", "mp3"])
def test_training_path_equals_tagging_path(tmp_path: Path, ext: str) -> None:
    path = make_audio(tmp_path / f"song.{ext}", seconds=9.5, sample_rate=44100)
    clip = dataset.Clip("blues.00001", "blues", path)
    extracted = cache.extract([clip], [cache.ORIGINAL], cache_dir=tmp_path / "c", jobs=1)
    cached = extracted.features["blues.00001", cache.ORIGINAL]
    np.testing.assert_array_equal(cached, _engine_features(path))
    # And once more from the .npz on disk: the cache changes nothing.
    again = cache.load_cached(clip, cache.ORIGINAL, config=CONFIG, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again, cached)


@pytest.mark.shared
def test_training_path_equals_tagging_path_on_a_gtzan_clip(gtzan_dir: Path) -> None:
    path = sorted((gtzan_dir / "genres" / "jazz").glob("jazz.*.ogg"))[0]
    np.testing.assert_array_equal(
        cache.tagging_features(path, config=CONFIG), _engine_features(path)
    )


def test_augmentation_is_deterministic_and_low_passes(tmp_path: Path) -> None:
    p = augment.params_for("rock.00007", 1)
    assert p == augment.params_for("rock.00007", 1) != augment.params_for("rock.00007", 0)
    assert p.stretch == 1.1 and 3000 <= p.lowpass_hz <= 8000 and p.production is not None
    noise = np.random.default_rng(0).standard_normal(22050 * 7).astype(np.float32) * 0.1
    low = augment.AugmentParams(stretch=1.0, lowpass_hz=3000.0)
    out = augment.augment_signal(noise, low, sample_rate=22050)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(len(out), 1 / 22050)
    assert spectrum[freqs > 6000].sum() < 1e-3 * spectrum[freqs < 2000].sum()
    feats = augment.augmented_features(noise, p, config=CONFIG)
    assert feats.shape[1:] == (130, 102) and feats.dtype == np.float32


def test_batch_masking_and_mixup_keep_shapes_and_label_mass() -> None:
    from model_training.hybrid.train import _regularise

    x = np.ones((8, 130, 102), np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(8)]
    xa, ya = _regularise(x, y, np.random.default_rng(0), mask=16, mixup=0.4)
    assert xa.shape == x.shape and xa.dtype == np.float32 and (xa == 0).any()
    np.testing.assert_allclose(ya.sum(1), 1.0, rtol=1e-6)
    assert (ya.max(1) >= 0.5).all()  # each window keeps its own label as the larger part
    same = _regularise(x, y, np.random.default_rng(0), mask=16, mixup=0.4)
    np.testing.assert_array_equal(same[0], xa)
    untouched = _regularise(x, y, np.random.default_rng(0), mask=0, mixup=0.0)
    np.testing.assert_array_equal(untouched[0], x)


@pytest.mark.parametrize("center", [0, 1])
def test_a_centred_network_ignores_a_recordings_static_colouring(center: int) -> None:
    """``center``: a constant per feature over a window (an EQ or mastering difference is
    one in log-mel and MFCC) changes nothing; without it, it changes the output."""
    from model_training.hybrid.network import build_model

    model = build_model({"center": center, "filters": 4, "lstm_units": 4, "stats_units": 8},
                        n_frames=130, n_features=102, n_classes=10)  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 130, 102)).astype(np.float32)
    tilt = rng.normal(scale=0.5, size=(4, 1, 102)).astype(np.float32)
    plain, coloured = (np.asarray(model(v, training=False)) for v in (x, x + tilt))
    if center:
        np.testing.assert_allclose(coloured, plain, atol=2e-5)
    else:
        assert np.abs(coloured - plain).max() > 1e-3


# --- discovery ----------------------------------------------------------------------------------


def test_discover_original_release_layout(tmp_path: Path) -> None:
    for g in ("blues", "rock"):
        for i in range(2):
            _write_au(tmp_path / "genres" / g / f"{g}.0000{i}.au", 3.5, seed=i)
    (tmp_path / "genres" / "rock" / "notes.txt").write_text("not audio")
    found = dataset.discover(tmp_path, splits_dir="none")
    assert found.layout == "original" and found.skipped == []
    assert [c.track_id for c in found.clips] == [
        "blues.00000",
        "blues.00001",
        "rock.00000",
        "rock.00001",
    ]
    assert {c.genre for c in found.clips} == {"blues", "rock"}


def test_discover_kaggle_layout_reports_corrupt_clip(tmp_path: Path) -> None:
    base = tmp_path / "Data" / "genres_original"
    make_audio(base / "jazz" / "jazz.00053.wav", seconds=3.5)
    make_audio(base / "pop" / "pop.00001.wav", seconds=3.5)
    (base / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    (tmp_path / "Data" / "images_original" / "jazz").mkdir(parents=True)
    for root in (tmp_path, base):  # the dataset root, or genres_original itself
        found = dataset.discover(root, splits_dir="none")
        assert found.layout == "kaggle"
        assert [c.track_id for c in found.clips] == ["jazz.00053", "pop.00001"]
        assert len(found.skipped) == 1 and "jazz.00054.wav" in found.skipped[0][0]
        assert "jazz.00054" in found.summary()


def test_discover_manifest_layout_reports_missing_clip(tmp_path: Path) -> None:
    rows = ["track_id,genre,path,original_sample_rate,duration_s,fault_filtered_split"]
    for tid, split in (("disco.00001", "train"), ("disco.00002", "test"), ("metal.00009", "none")):
        g = tid.split(".")[0]
        rel = f"genres/{g}/{tid}.ogg"
        if tid != "metal.00009":  # listed in the manifest, but the file is gone
            make_audio(tmp_path / rel, seconds=3.5)
        rows.append(f"{tid},{g},{rel},16000,3.5,{split}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    found = dataset.discover(tmp_path)
    assert found.layout == "manifest"
    assert [(c.track_id, c.ff_split, c.original_sample_rate) for c in found.clips] == [
        ("disco.00001", "train", 16000),
        ("disco.00002", "test", 16000),
    ]
    assert found.skipped == [("genres/metal/metal.00009.ogg", "missing file")]


def test_fault_filtered_lists_match_on_track_id(tmp_path: Path) -> None:
    (tmp_path / "train_filtered.txt").write_text("blues/blues.00012.wav\nrock/rock.00001.au\n\n")
    (tmp_path / "valid_filtered.txt").write_text("pop/pop.00003\n")
    (tmp_path / "test_filtered.txt").write_text("jazz/jazz.00054.wav\nnot a track\n")
    lists = dataset.read_fault_filtered(tmp_path)
    assert lists == {
        "blues.00012": "train",
        "rock.00001": "train",
        "pop.00003": "valid",
        "jazz.00054": "test",
    }
    (tmp_path / "test_filtered.txt").write_text("pop/pop.00003.wav\n")
    with pytest.raises(dataset.DatasetError):
        dataset.read_fault_filtered(tmp_path)


def test_packaged_lists_are_the_published_ones() -> None:
    lists = dataset.read_fault_filtered(dataset.PACKAGED_SPLITS)
    counts = {s: sum(v == s for v in lists.values()) for s in dataset.FF_SPLITS}
    assert counts == {"train": 443, "valid": 197, "test": 290}


def test_auto_split_needs_every_listed_clip(tmp_path: Path) -> None:
    splits = tmp_path / "lists"
    splits.mkdir()
    (splits / "train_filtered.txt").write_text("blues/blues.00000.wav\n")
    (splits / "test_filtered.txt").write_text("blues/blues.00001.wav\n")
    _write_au(tmp_path / "genres" / "blues" / "blues.00000.au", 3.5)
    partial = dataset.discover(tmp_path, splits_dir=splits)
    assert partial.missing_listed == ["blues.00001"]
    assert splitting.choose_split(partial) == "kfold"
    _write_au(tmp_path / "genres" / "blues" / "blues.00001.au", 3.5)
    full = dataset.discover(tmp_path, splits_dir=splits)
    assert splitting.choose_split(full) == "fault-filtered"
    assert [c.ff_split for c in full.clips] == ["train", "test"]


# --- splits -------------------------------------------------------------------------------------


def _fake_clips(per_genre: dict[str, int]) -> list[dataset.Clip]:
    return [
        dataset.Clip(f"{g}.{i:05d}", g, Path(f"{g}.{i:05d}.wav"))
        for g, n in per_genre.items()
        for i in range(n)
    ]


def test_kfold_is_stratified_and_track_disjoint() -> None:
    clips = _fake_clips({"classical": 100, "pop": 100, "disco": 14, "rock": 16})
    folds = splitting.kfold(clips, k=5, seed=0)
    held = [c.track_id for _, valid in folds for c in valid]
    assert sorted(held) == sorted(c.track_id for c in clips)  # each track held out once
    for train, valid in folds:
        assert not {c.track_id for c in train} & {c.track_id for c in valid}
        assert sum(c.genre == "disco" for c in valid) in (2, 3)


def test_plan_holds_out_the_fault_filtered_test_clips() -> None:
    clips = [
        dataset.Clip(c.track_id, c.genre, c.path, None, "test" if i % 4 == 0 else "train")
        for i, c in enumerate(_fake_clips({g: 12 for g in GTZAN_GENRES}))
    ]
    plan = splitting.make_plan(clips, "kfold", k=5)
    test = {c.track_id for c in clips if c.ff_split == "test"}
    assert set(plan.test) == test
    assert not test & set(plan.development())
    for train, valid in plan.folds:
        assert not test & (set(train) | set(valid)) and not set(train) & set(valid)
    again = splitting.Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan


def test_unlisted_clips_join_training_and_the_lists_keep_their_roles() -> None:
    roles = ("train", "valid", "test", "none")
    clips = [
        dataset.Clip(c.track_id, c.genre, c.path, None, roles[i % 4])
        for i, c in enumerate(_fake_clips({g: 8 for g in GTZAN_GENRES}))
    ]
    listed = splitting.make_plan(clips, "fault-filtered")
    plan = splitting.make_plan(clips, "fault-filtered+unlisted")
    unlisted = {c.track_id for c in clips if c.ff_split == "none"}
    assert set(plan.train) == set(listed.train) | unlisted and not unlisted & set(listed.train)
    assert (plan.valid, plan.test) == (listed.valid, listed.test)
    assert plan.folds == [(plan.train, plan.valid)]


def test_assert_disjoint_catches_a_shared_track() -> None:
    a, b = _fake_clips({"pop": 2}), _fake_clips({"pop": 1})
    with pytest.raises(AssertionError, match="pop.00000"):
        splitting.assert_disjoint(a, b)


# --- a tiny run, end to end ------------------------------------------------------------------


TINY_GENRES = ("blues", "jazz", "metal", "rock")


@pytest.fixture(scope="module")
def tiny_gtzan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 genres × 5 short clips in the Kaggle layout, plus one corrupt clip."""
    root = tmp_path_factory.mktemp("gtzan") / "Data" / "genres_original"
    kinds = ("music", "noise", "clipped")
    for gi, g in enumerate(TINY_GENRES):
        for i in range(5):
            make_audio(
                root / g / f"{g}.{i:05d}.wav",
                seconds=6.5,
                channels=1,
                kind=kinds[gi % 3],
                seed=gi * 10 + i,
            )
    (root / "jazz" / "jazz.00054.wav").write_bytes(b"\x00" * 2000)
    return root.parent


@pytest.mark.slow
def test_tiny_end_to_end_run_writes_a_working_bundle(tiny_gtzan: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from genrefy_tagger.listening.engine import Analyzer
    from genrefy_tagger.listening.model import load_bundle
    from model_training.cli import main

    run, bundle = tmp_path / "run", tmp_path / "bundle"
    common = ["--out", str(run), "--cache", str(tmp_path / "cache"), "--jobs", "1"]
    fit = ["--epochs", "1", "--patience", "1", "--windows-per-epoch", "32"]
    args = [
        "ship",
        "--data",
        str(tiny_gtzan),
        "--bundle",
        str(bundle),
        "--splits",
        "none",
        "--folds",
        "2",
        "--augment",
        "1",
        "--trials",
        "2",
        "--tune-folds",
        "1",
        "--tune-epochs",
        "1",
        *common,
        *fit,
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    plan = json.loads((run / "plan.json").read_text())
    assert plan["layout"] == "kaggle" and plan["clips"] == 20
    assert any("jazz.00054" in s["clip"] for s in plan["skipped"])
    meta = json.loads((bundle / "bundle.json").read_text())
    for key in (
        "name",
        "model_version",
        "kind",
        "architecture",
        "genres",
        "feature_config",
        "scaler",
        "vote",
        "min_confidence",
        "files",
        "hyperparameters",
        "metrics",
        "training_data",
        "package_version",
        "commands",
    ):
        assert key in meta, key
    assert meta["vote"] in ("mean", "logmean") and meta["checks"]["max_abs_diff"] < 1e-4

    # The study's trials again, with fresh seeds: the best mean becomes best_hp.json.
    again = ["tune-reseed", "--trials", "0,1", "--seeds", "1,2", "--tune-folds", "1"]
    result = CliRunner().invoke(main, [*again, "--tune-epochs", "1", *common])
    assert result.exit_code == 0, result.output
    reseeded = json.loads((run / "reseed.json").read_text())
    assert set(reseeded["trials"]) == {"0", "1"}
    assert all(len(r["seed_values"]) == 2 for r in reseeded["trials"].values())
    best = reseeded["trials"][str(reseeded["best_trial"])]
    assert best["mean"] == max(r["mean"] for r in reseeded["trials"].values())
    assert json.loads((run / "best_hp.json").read_text()) == best["hp"]
    refused = CliRunner().invoke(main, ["tune-reseed", "--trials", "7", *common])
    assert refused.exit_code == 1 and "Error: no trials [7] in the study" in refused.output
    assert meta["metrics"]["random_chunk_split"]["label"] == "leaky, for comparison only"
    assert meta["metrics"]["tuning"]["complete"] + meta["metrics"]["tuning"]["pruned"] == 2
    assert (bundle / "report" / "confusion_test.png").is_file()
    # Calibrated on the run's early-stopping clips, through the tagger.
    cal = meta["calibration"]
    assert cal["fitted_on"].startswith(f"{sum(plan['per_role']['valid'].values())} early-stopping")
    assert meta["min_confidence"] == cal["threshold_choice"]["threshold"]
    assert (bundle / "report" / "reliability_valid.png").is_file()

    loaded = load_bundle(bundle)
    assert loaded.genres == GTZAN_GENRES and loaded.temperature == cal["temperature"] > 0
    clip = tiny_gtzan / "genres_original" / "rock" / "rock.00004.wav"
    analysis = Analyzer(loaded).analyse(clip)
    assert analysis.decision is not None and analysis.decision.genre in GTZAN_GENRES

    # An interrupted or finished study resumes: one more trial, not two more.
    result = CliRunner().invoke(
        main, ["tune", "--trials", "3", "--tune-folds", "1", "--tune-epochs", "1", *common]
    )
    assert result.exit_code == 0, result.output
    tune = json.loads((run / "tune.json").read_text())
    assert tune["complete"] + tune["pruned"] == 3


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "model_training", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for command in ("prepare", "tune", "train", "evaluate", "export", "ship"):
        assert command in out.stdout


# Every command of genrefy-train, by model; a command lost or renamed in a refactor fails here.
HYBRID_COMMANDS = {"prepare", "tune", "tune-reseed", "train", "evaluate", "export", "ship"}
MUSICNN_COMMANDS = {
    "import-musicnn",
    "musicnn-export-frontend",
    "musicnn-fidelity",
    "musicnn-tune",
    "musicnn-head",
    "musicnn-port-data",
    "musicnn-outside",
    "musicnn-retrain",
}


def test_every_train_command_has_help() -> None:
    from click.testing import CliRunner

    from model_training.cli import main

    assert set(main.commands) == HYBRID_COMMANDS | MUSICNN_COMMANDS
    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"], prog_name="genrefy-train")
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: genrefy-train {name} "), result.output
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in result.output, (name, opt)


def test_train_help_imports_no_tensorflow() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from model_training.cli import main\n"
        "for name in [None, *main.commands]:\n"
        "    r = CliRunner().invoke(main, [name, '--help'] if name else ['--help'])\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
