"""The shipped models predict today what they predicted when the reference was recorded.

``tests/data/reference_predictions.json`` holds, for both shipped bundles, the window
probabilities the tagger's :class:`~genrefy_tagger.listening.engine.Analyzer` gave on 8 shared
GTZAN clips (short-track path: decoded whole, edges trimmed) and on one of them looped
to 2 minutes (long-track path: seeking to each window). It was first recorded at
commit ``c694155``, before the engine was reorganised around model kinds (issue 11),
and passed unchanged after it (``9054e60``); it was recorded again, with::

    .venv/bin/python tests/test_same_predictions.py record

when the retrained hybrid 1.2.0 replaced 1.1.0, and again when 1.3.0 replaced 1.2.0 (a new
model predicts differently by design; the musicnn half came out identical both times), and
when both models were retrained without repeated recordings and scored artists (musicnn head
2026.11.26.0926, hybrid 1.3.1), when hybrid 1.4.0 (other settings) replaced 1.3.1, when
hybrid 1.5.0 (settings of a fresh study) replaced 1.4.0, and when hybrid 1.6.0 (1.5.0's
settings retrained on the 583-clip folder) replaced 1.5.0 (the musicnn half again identical).
A refactor that changes what the engine hears or how a kind computes fails here.
LiteRT's kernels may differ in the last bits between CPUs, hence the tolerance.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "reference_predictions.json"
CLIPS = (
    "blues.00005", "classical.00012", "country.00003", "disco.00004",
    "hiphop.00002", "jazz.00030", "metal.00001", "reggae.00006",
)  # fmt: skip
LOOPED = "jazz.00030"
TOLERANCE = 2e-3


def _clip(root: Path, track_id: str) -> Path:
    genre = track_id.split(".")[0]
    return root / "genres" / genre / f"{track_id}.ogg"


def _looped(root: Path, folder: Path) -> Path:
    import soundfile as sf

    y, sr = sf.read(_clip(root, LOOPED), dtype="float32")
    out = folder / f"{LOOPED}-looped.flac"
    sf.write(out, np.tile(y, 4), sr)  # 120 s: past the whole-decode limit (90 s)
    return out


def _predict(root: Path, folder: Path) -> dict[str, dict[str, list]]:
    from genrefy_tagger.listening.engine import Analyzer

    paths = {t: _clip(root, t) for t in CLIPS} | {f"{LOOPED}-looped": _looped(root, folder)}
    out: dict[str, dict[str, list]] = {}
    for model in ("hybrid", "musicnn"):
        analyzer = Analyzer(model)
        out[model] = {}
        for name, path in paths.items():
            analysis = analyzer.analyse(path)
            assert analysis.error is None, analysis.error
            out[model][name] = np.round(analysis.probabilities, 6).tolist()
    return out


@pytest.mark.shared
def test_both_models_predict_as_recorded(gtzan_dir: Path, tmp_path: Path) -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    now = _predict(gtzan_dir, tmp_path)
    assert now.keys() == reference.keys()
    for model, tracks in reference.items():
        assert now[model].keys() == tracks.keys()
        for name, probs in tracks.items():
            ref, got = np.asarray(probs), np.asarray(now[model][name])
            assert got.shape == ref.shape, (model, name)
            assert np.abs(got - ref).max() < TOLERANCE, (model, name)
            assert ref.mean(0).argmax() == got.mean(0).argmax(), (model, name)


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _gtzan_root

    with tempfile.TemporaryDirectory() as tmp:
        data = _predict(_gtzan_root(), Path(tmp))
    REFERENCE.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE}")
