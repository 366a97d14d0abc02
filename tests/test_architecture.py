"""The folder tree is the architecture: a core that imports no track, tracks as peer packages, the
torch-free analysis, and no import cycles anywhere (docs/architecture.md). The import graph is
built from the source with the standard library's `ast`: every import statement counts, also one
inside a function (a lazy import is still a dependency)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"shrinkbench": ROOT / "shrinkbench", "shrinkbench.analysis": ROOT / "analysis"}
TRACKS = ("shrinkbench.vision", "shrinkbench.llm")
CORE = "shrinkbench.core"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for shrinkbench/ and analysis/ (installed as shrinkbench.analysis)."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` imports (a `from package import submodule` counts
    as importing the submodule)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def track_of(module: str) -> str | None:
    return next((t for t in TRACKS if module == t or module.startswith(t + ".")), None)


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_reads_relative_lazy_and_submodule_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import sub\n")
    (package / "sub.py").write_text("def f():\n    from pkg.other import g\n")
    (package / "other.py").write_text("import pkg\n")
    known = {"pkg", "pkg.sub", "pkg.other"}
    assert imports_of("pkg", package / "__init__.py", known) == {"pkg.sub"}
    assert imports_of("pkg.sub", package / "sub.py", known) == {"pkg.other"}
    assert imports_of("pkg.other", package / "other.py", known) == {"pkg"}


def test_no_import_cycles_in_shrinkbench_and_analysis():
    graph = import_graph()
    assert len(graph) > 100  # the whole package was read
    assert cycles(graph) == []


def test_the_core_imports_no_track():
    offending = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                       if module.startswith(CORE) for target in targets if track_of(target))
    assert offending == []


def test_tracks_are_peers_that_do_not_import_each_other():
    offending = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                       if track_of(module) for target in targets
                       if track_of(target) and track_of(target) != track_of(module))
    assert offending == []


def test_the_analysis_imports_no_torch_and_no_toolkit_module():
    for name, path in module_files().items():
        if not name.startswith("shrinkbench.analysis"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for target in names:
                assert target.split(".")[0] != "torch", f"{name} imports {target}"
                assert not target.startswith("shrinkbench.") or target.startswith("shrinkbench.analysis"), \
                    f"{name} imports {target}"


def test_every_track_is_a_package_with_its_registration():
    from shrinkbench.core.tracks import tracks

    names = [t.name for t in tracks()]
    assert names[:1] == ["vision"] and set(names) >= {"vision", "llm"}
    for name in ("vision", "llm"):
        assert (ROOT / "shrinkbench" / name / "track.py").is_file()


@pytest.mark.parametrize("module", ["shrinkbench.core.tracks", "shrinkbench.core.suite", "shrinkbench.core.sweep"])
def test_core_modules_name_no_track_in_their_code(module):
    """Besides imports: the core does not branch on a track's name (`if track == "llm"`)."""
    path = module_files()[module]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            assert "llm" not in constants, f"{module} compares with 'llm'"


def test_every_reference_record_keeps_its_run_id():
    """The layout moved modules, not identities: each committed record's config, read by its
    track, hashes to the run id it was stored under."""
    import json

    from shrinkbench.core.tracks import config_from_dict

    records = sorted((ROOT / "results" / "reference" / "runs").glob("*.json"))
    assert len(records) > 300
    tracks_seen = set()
    for path in records:
        record = json.loads(path.read_text())
        config = config_from_dict(record["config"], str(path))
        tracks_seen.add(getattr(config, "track", "vision"))
        assert config.run_id == record["run_id"] == path.stem
    assert tracks_seen == {"vision", "llm"}


# ------------------------------------------------------------------ a third track, registered in-process

TOY_METHODS = {"keep_all": 1.0, "keep_half": 0.5}


def _toy_track():
    """A complete toy track: its run 'prunes' a list of numbers and records their mean as top1."""
    from dataclasses import asdict, dataclass, replace

    from shrinkbench.analysis.schema import RECORD_SCHEMA
    from shrinkbench.core.configs import build, check, digest
    from shrinkbench.core.errors import ConfigError
    from shrinkbench.core.suite import Suite
    from shrinkbench.core.tracks import Listing, Track

    @dataclass(frozen=True)
    class ToyConfig:
        strategy: str = "keep_all"
        seed: int = 0
        model: str = "numbers"
        dataset: str = "toy"
        compression: float = 1.0
        track: str = "toy"

        def __post_init__(self):
            check(self.strategy in TOY_METHODS, f"unknown toy strategy {self.strategy!r}")

        run_id = property(lambda self: digest(asdict(self)))
        base_id = property(lambda self: digest({"toy": self.seed}))
        is_dense = property(lambda self: self.strategy == "keep_all")
        strategy_sha256 = None

        def to_dict(self):
            return asdict(self)

        def replace(self, **changes):
            return replace(self, **changes)

        def record_names(self):
            return {"method_tags": ["toy"] if not self.is_dense else [], "data_split": "toy-split"}

        @classmethod
        def from_dict(cls, data, where="config"):
            return build(cls, data, where)

    def execute(cfg, store, device=None, **_):
        kept = TOY_METHODS[cfg.strategy]
        value = 100.0 * kept - cfg.seed
        return {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "status": "ok", "error": None,
                "config": cfg.to_dict(), **cfg.record_names(), "base": {"id": cfg.base_id},
                "metrics": [{"stage": "post", "split": "test", "metric": "top1", "value": value},
                            {"stage": "post", "split": "none", "metric": "compression_ratio", "value": 1 / kept}],
                "epochs": [], "provenance": {}}

    def load_suite(data, where, path, added=None):
        sweep = data.get("sweep", {})
        if not isinstance(sweep.get("strategies"), list):
            raise ConfigError(f"{where}: [sweep] strategies must be a list")
        configs = [ToyConfig.from_dict({"strategy": s, "seed": seed}, where)
                   for s in sweep["strategies"] for seed in sweep.get("seeds", [0])]
        return Suite(data.get("name", path.stem), where, "", tuple(configs), {}, "toy seeds")

    listing = Listing(models=lambda pattern: [{"name": "numbers", "params": 4}],
                      strategies=lambda: [{"name": name, "kept": kept} for name, kept in TOY_METHODS.items()],
                      datasets=lambda root: [{"name": "toy", "splits": "test", "split_rule": "-", "source": "this test"}],
                      load_metrics=lambda: None)
    return Track(name="toy", summary="a toy track of the architecture test", config_from_dict=ToyConfig.from_dict,
                 execute=execute, describe=lambda cfg: f"toy {cfg.strategy} seed {cfg.seed}", load_suite=load_suite,
                 listing=listing)


def test_a_third_track_is_one_registration_and_runs_through_the_core(tmp_path, capsys):
    import json

    from shrinkbench.cli import main
    from shrinkbench.core import tracks

    track = tracks.register_track(_toy_track())
    try:
        suite = tmp_path / "toy.toml"
        suite.write_text('name = "toy"\ntrack = "toy"\n[sweep]\nstrategies = ["keep_all", "keep_half"]\nseeds = [0, 1]\n')
        store = tmp_path / "store"
        assert main(["run", str(suite), "--store", str(store), "--quiet"]) == 0
        records = [json.loads(p.read_text()) for p in sorted((store / "runs").glob("*.json"))]
        assert sorted(r["config"]["strategy"] for r in records) == ["keep_all", "keep_all", "keep_half", "keep_half"]
        assert main(["run", str(suite), "--store", str(store), "--quiet"]) == 0  # all stored: skipped
        capsys.readouterr()
        assert main(["tracks", "--format", "json"]) == 0
        assert "toy" in [row["name"] for row in json.loads(capsys.readouterr().out)]
        assert main(["strategies", "--track", "toy", "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"track": "toy", "name": "keep_all", "kept": 1.0},
                                                       {"track": "toy", "name": "keep_half", "kept": 0.5}]
        from shrinkbench.analysis.load import load_table

        table = load_table(str(store)).table
        assert set(table["strategy"]) == {"keep_all", "keep_half [toy]"}
        assert set(table["data_split"]) == {"toy-split"}
    finally:
        tracks.unregister_track(track.name)
