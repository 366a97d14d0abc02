"""Packaging: the installed import paths are unambiguous and every package is installed."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_users_own_analysis_module_does_not_shadow_the_toolkit(tmp_path):
    # a user's working folder often holds an analysis.py; python puts that folder first on sys.path
    (tmp_path / "analysis.py").write_text("raise RuntimeError('the user analysis module was imported')\n")
    (tmp_path / "analysis").mkdir()  # or a folder of that name
    code = ("import shrinkbench.vision.runner, shrinkbench.analysis.compare, shrinkbench.cli\n"
            "import shrinkbench.analysis as a\n"
            "assert a.__file__.endswith('__init__.py') and 'analysis' in a.__name__\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_no_code_imports_the_bare_analysis_name():
    pattern = re.compile(r"^\s*(from analysis[\s.]|import analysis\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in ("shrinkbench", "analysis", "paper_figures", "tests",
                                                          "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_pyproject_installs_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {name: ROOT / folder for name, folder in config.get("package-dir", {}).items()}
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "shrinkbench").rglob("__init__.py")}
    found |= {name + ("." + ".".join(p.parent.relative_to(folder).parts) if p.parent != folder else "")
              for name, folder in mapped.items() for p in folder.rglob("__init__.py")}
    assert found == listed


def test_the_listing_commands_and_help_import_neither_torch_nor_pandas():
    code = ("import sys, io, contextlib\n"
            "from shrinkbench.cli import main\n"
            "for argv in (['zoo'], ['zoo', 'lenet*', '--format', 'json'], ['strategies'], ['metrics'], ['suites'],"
            " ['--help'], ['run', '--help'], ['compare', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert main(argv) == 0, argv\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'pandas', 'scipy'))\n"
            "assert not heavy, heavy[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_wheel_ships_the_literature_corpus_with_its_licences(tmp_path):
    """Issue 25, point 11: a fresh clone and a pip install have the corpus, no ../shared needed."""
    import zipfile

    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("shrinkbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    corpus = "shrinkbench/analysis/literature_corpus/"
    shipped = {p.relative_to(ROOT / "analysis" / "literature_corpus").as_posix()
               for p in (ROOT / "analysis" / "literature_corpus").rglob("*") if p.is_file()}
    assert {"README.md", "LICENSE-shrinkbench", "Results-Grid view.csv", "keras/LICENSE"} <= shipped
    assert {corpus + name for name in shipped} <= names


def test_the_default_corpus_is_the_packaged_copy(monkeypatch):
    from shrinkbench.analysis import literature

    monkeypatch.delenv(literature.ENV_VAR, raising=False)
    assert literature.literature_path() == literature.PACKAGED.resolve()
    assert literature.load_results().n_input == 551  # the reported results of the corpus
