"""A run's final hybrid model against an earlier bundle on the run's early-stopping clips.

The ship rule of hybrid 1.6.0 (``runs/v10/notes.json``, in its bundle's ``notes``): both
scored with ``experiments.evaluate_model`` (every original window, logmean vote) on the
run's ``plan.valid``; writes ``<run>/ship_check.json`` (``ship``: the new model's macro-F1
and accuracy both at least the old one's). An experiment, not a test::

    python bench/hybrid_ship_check.py runs/v10 runs/hybrid-1.5.0
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from model_training.evaluate import write_json  # noqa: E402
from model_training.hybrid import experiments  # noqa: E402
from model_training.hybrid.steps import run_windows  # noqa: E402
from model_training.hybrid.train import configure_tensorflow  # noqa: E402

out, old = Path(sys.argv[1]), Path(sys.argv[2])
configure_tensorflow(1)
info, plan, windows = run_windows(out)
valid = windows.subset(plan.valid, augmented=False)
new = keras.models.load_model(out / "final" / "model.keras", safe_mode=True)
with np.load(out / "final" / "scaler.npz") as s:
    new_mean, new_scale = s["mean"], s["scale"]
meta = json.loads((old / "bundle.json").read_text())
old_model = keras.models.load_model(old / "model.keras", safe_mode=True, compile=False)
res = {}
for name, model, mean, scale in (
    ("new", new, new_mean, new_scale),
    (
        meta["model_version"],
        old_model,
        np.array(meta["scaler"]["mean"]),
        np.array(meta["scaler"]["scale"]),
    ),
):
    r = experiments.evaluate_model(model, mean, scale, valid, vote="logmean")
    t = r["track"]["logmean"]
    res[name] = {
        "tracks": len(r["tracks"]),
        "accuracy": t["accuracy"],
        "macro_f1": t["macro_f1"],
        "per_genre": t["per_genre"],
        "confusion": t["confusion"],
    }
    print(
        name,
        len(r["tracks"]),
        "accuracy",
        round(t["accuracy"], 4),
        "macro-F1",
        round(t["macro_f1"], 4),
    )
ship = (
    res["new"]["macro_f1"] >= res[meta["model_version"]]["macro_f1"]
    and res["new"]["accuracy"] >= res[meta["model_version"]]["accuracy"]
)
res["ship"] = ship
res["valid_clips"] = plan.valid
write_json(res, out / "ship_check.json")
print("ship:", ship)
