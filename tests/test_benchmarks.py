"""Every script in benchmarks/ still starts: ``--help`` in a fresh process exits 0, without importing torch or
reading data first, so a broken import fails here rather than when the benchmark is next run by hand (they are
not run here). Scripts are found by globbing: a new one is covered without editing this file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted([*BENCHMARKS.glob("*.py"), *BENCHMARKS.glob("exploratory/*.py")])
SHELL_SCRIPTS = sorted(BENCHMARKS.glob("*.sh"))
#: a line of ``python -X importtime`` for the top-level torch package
TORCH_IMPORTED = re.compile(r"\|\s*torch$", re.MULTILINE)


def help_command(script: Path) -> list[str]:
    if script.suffix == ".sh":
        return ["bash", str(script), "--help"]
    return [sys.executable, "-X", "importtime", str(script), "--help"]


@pytest.fixture(scope="module")
def helped(tmp_path_factory) -> dict:
    """script -> (exit status, stdout, stderr) of its ``--help``, all started at once so that they share the
    cores (output goes to files: a full pipe would stall a process). NASX_DATA points at a directory that does
    not exist, so reading data fails."""
    folder = tmp_path_factory.mktemp("benchmarks")
    env = {**os.environ, "NASX_DATA": str(folder / "no-data")}
    started = {}
    for number, script in enumerate([*SCRIPTS, *SHELL_SCRIPTS]):
        out, err = folder / f"{number}.out", folder / f"{number}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(help_command(script), cwd=BENCHMARKS.parent, env=env, stdout=stdout,
                                       stderr=stderr)
        started[script] = (process, out, err)
    return {script: (process.wait(timeout=300), out.read_text(), err.read_text())
            for script, (process, out, err) in started.items()}


def test_there_are_scripts():
    assert len(SCRIPTS) >= 10 and SHELL_SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(BENCHMARKS)))
def test_python_script_starts(helped, script):
    status, out, err = helped[script]
    assert status == 0, err[-3000:]
    assert out.startswith("usage:")
    assert not TORCH_IMPORTED.search(err), f"{script.name} --help imports torch: import it in main()"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shell_script_starts(helped, script):
    status, out, err = helped[script]
    assert status == 0, err
    assert "Usage" in out


def test_the_torch_check_sees_an_eager_import(tmp_path):
    """What the check above looks for: a script that imports torch before parsing its arguments shows it (a
    stand-in torch package, as the real one takes seconds to import)."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("")
    script = tmp_path / "eager.py"
    script.write_text("import argparse\nimport torch\nargparse.ArgumentParser().parse_args()\n")
    done = subprocess.run(help_command(script), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0 and TORCH_IMPORTED.search(done.stderr)


def test_the_index_names_every_script_and_grid():
    index = (BENCHMARKS / "README.md").read_text()
    listed = [*SCRIPTS, *SHELL_SCRIPTS, *BENCHMARKS.glob("grids/*.toml")]
    missing = [str(path.relative_to(BENCHMARKS)) for path in listed
               if f"`{path.relative_to(BENCHMARKS).as_posix()}`" not in index]
    assert not missing, f"benchmarks/README.md has no row for {missing}"


def expand_braces(pattern: str) -> list[str]:
    """'a_{x,y}.json' -> ['a_x.json', 'a_y.json'] (the shell's brace expansion, as docs/results.md writes it)."""
    found = re.search(r"\{([^{}]*)\}", pattern)
    if not found:
        return [pattern]
    return [expanded for choice in found.group(1).split(",")
            for expanded in expand_braces(pattern[:found.start()] + choice + pattern[found.end():])]


def test_results_named_in_docs_exist():
    """Every committed output docs/results.md names by its path (globs and braces expanded; `<grid>` or `$D`
    placeholders skipped) is there."""
    root = BENCHMARKS.parent
    text = (root / "docs" / "results.md").read_text()
    named = set(re.findall(r"benchmarks/results/(?:\{[^}]*\}|[^\s`'\"),;{])+", text))
    assert len(named) > 20
    missing = [path for path in sorted(named) if not any(char in path for char in "<$")
               and not all(any(root.glob(expanded.rstrip(".:"))) for expanded in expand_braces(path))]
    assert not missing, f"docs/results.md names outputs that are not in benchmarks/results: {missing}"


def test_the_yardsticks_subsets_are_every_combiner_with_every_non_empty_subset():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from budget_yardstick import subsets
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert subsets("freerea,rank/naswot,skip") == ["freerea(naswot)", "freerea(skip)", "freerea(naswot,skip)",
                                                   "rank(naswot)", "rank(skip)", "rank(naswot,skip)"]
    assert len(subsets("minmax/a,b,c,d")) == 15
    with pytest.raises(SystemExit):
        subsets("freerea")
