"""The shape of the code: no import cycles, small modules, model kinds behind one registry."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genrefy_tagger", "model_training", "beetsplug")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere (functions included; not for type checking)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # imports only a type checker follows
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycles(graph) == []


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_only_the_registry_asks_for_a_model_kind() -> None:
    from genrefy_tagger.listening.kinds import KINDS

    kinds = ROOT / "genrefy_tagger" / "listening" / "kinds"
    asking = []
    for path in [*(ROOT / "genrefy_tagger").rglob("*.py"), *(ROOT / "beetsplug").rglob("*.py")]:
        if kinds in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            if any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides) and any(
                isinstance(s, ast.Constant) and s.value in KINDS for s in sides
            ):
                asking.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert asking == []


@pytest.fixture
def toy_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundle of a third kind: one module (``tests/toy_kind.py``) and one registry line."""
    from genrefy_tagger.listening import kinds
    from genrefy_tagger.listening.model import write_bundle_json

    monkeypatch.setitem(kinds.KINDS, "toy", "toy_kind")
    write_bundle_json(
        tmp_path / "toy", {"name": "toy", "kind": "toy", "genres": ["dark", "bright"]}
    )
    return tmp_path / "toy"


def test_a_third_kind_runs_through_the_engine(toy_bundle: Path, tmp_path: Path) -> None:
    import soundfile as sf

    from genrefy_tagger.listening.engine import Analyzer

    t = np.arange(44100 * 9) / 44100
    sf.write(tmp_path / "hum.flac", 0.3 * np.sin(2 * np.pi * 60 * t), 44100)
    sf.write(tmp_path / "hiss.flac", 0.3 * np.sign(np.sin(2 * np.pi * 3000 * t)), 44100)
    analyzer = Analyzer(toy_bundle, min_confidence=0.0)
    hum, hiss = analyzer.analyse(tmp_path / "hum.flac"), analyzer.analyse(tmp_path / "hiss.flac")
    assert hum.decision.genre == "dark" and hiss.decision.genre == "bright"
    assert hum.decision.n_windows == 4 and analyzer.window_seconds == 2.0  # 9 s → four 2-s windows


def test_an_unknown_kind_is_a_clear_error(tmp_path: Path) -> None:
    from genrefy_tagger.listening.engine import Analyzer
    from genrefy_tagger.listening.model import BundleError, write_bundle_json

    write_bundle_json(tmp_path, {"name": "x", "kind": "quantum", "genres": ["a"]})
    assert json.loads((tmp_path / "bundle.json").read_text())["kind"] == "quantum"
    with pytest.raises(BundleError, match="unknown model kind 'quantum'"):
        Analyzer(tmp_path)


# --- the pipeline's steps (written by the layout script; STEPS is its order) -------------

#: genrefy_tagger's sub-packages, in the order imports flow: each imports only from itself,
#: from the ones before it, and from the shared top-level modules.
STEPS = ("reading", "listening", "writing", "reporting", "running", "cli")
MAX_TOP_LEVEL = 8


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _step(module: str) -> str | None:
    """The sub-package of genrefy_tagger a module is in; None for the top level."""
    parts = module.split(".")
    if parts[0] != "genrefy_tagger" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in STEPS else None


def test_imports_flow_one_way_between_the_steps() -> None:
    rank = {step: i for i, step in enumerate(STEPS)}
    backwards = []
    for name, targets in _graph().items():
        if not name.startswith("genrefy_tagger") or name == "genrefy_tagger.__main__":
            continue
        here = _step(name)
        for target in targets:
            if not target.startswith("genrefy_tagger.") or name.startswith(target + "."):
                continue
            there = _step(target)
            if there is None:
                continue  # the shared top-level modules: anyone may use them
            if here is None or rank[there] > rank[here]:
                backwards.append(f"{name} -> {target}")
    assert backwards == []


def test_the_shared_top_level_imports_no_step() -> None:
    for name, targets in _graph().items():
        shared = name.count(".") == 1 and name.startswith("genrefy_tagger.") and _step(name) is None
        if shared and name != "genrefy_tagger.__main__":
            assert [t for t in targets if _step(t) is not None] == [], name


def test_every_module_is_in_a_step_or_shared() -> None:
    top = sorted(
        p.name
        for p in (ROOT / "genrefy_tagger").iterdir()
        if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
    )
    modules = [n for n in top if n.endswith(".py")]
    packages = [n for n in top if not n.endswith(".py")]
    assert len(modules) <= MAX_TOP_LEVEL, modules
    assert sorted(packages) == sorted(STEPS)


def test_the_tagger_imports_no_keras() -> None:
    """Keras is for training: no module of the tagger imports it when loaded (the hybrid
    kind's opt-in ``backend="keras"``, which training uses to check an export, imports it
    inside that branch only), and loading every module loads neither Keras nor TensorFlow."""
    import subprocess
    import sys

    for name, path in _modules().items():
        if not name.startswith("genrefy_tagger"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("keras", "tensorflow") for n in names), name
    names = sorted(n for n in _modules() if n.startswith("genrefy_tagger"))
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
