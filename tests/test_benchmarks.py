"""Every script in benchmarks/ still starts: ``--help`` in a fresh process exits 0, without importing torch or
reading data first, so a broken import fails here rather than when the benchmark is next run by hand (they are
not run here). Scripts are found by globbing: a new one is covered without editing this file."""

import gzip
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    subsets = _yardstick().subsets
    assert subsets("freerea,rank/naswot,skip") == ["freerea(naswot)", "freerea(skip)", "freerea(naswot,skip)",
                                                   "rank(naswot)", "rank(skip)", "rank(naswot,skip)"]
    assert len(subsets("minmax/a,b,c,d")) == 15
    with pytest.raises(SystemExit):
        subsets("freerea")


def _benchmark(name: str):
    """A script of benchmarks/ imported as a module."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _yardstick():
    return _benchmark("budget_yardstick")


class _Directions:
    """Stands in for the plugin registry: only the proxies' directions are read."""

    def __init__(self, lower_is_better=()):
        self.lower = set(lower_is_better)

    def get(self, kind, name):
        return type(name, (), {"higher_is_better": name not in self.lower})


def test_the_yardsticks_ceiling_counts_near_optimal_cells_no_feasible_cell_dominates():
    ceiling = _yardstick().ceiling
    budget = [{"label": "all", "max_flops": 1.0, "max_params": 1.0, "half": "pick"}]
    ones = np.ones(4)
    columns = {"a": np.array([1.0, 2.0, 3.0, 0.0]), "b": np.array([1.0, 2.0, 0.0, 3.0])}
    # cell 0 is the optimum but cell 1 beats it on both proxies; cell 1 is within 0.3 and undominated
    row = ceiling(["a", "b"], columns, _Directions(), np.array([90.0, 89.8, 80.0, 70.0]), ones, ones, budget,
                  0.3)["budgets"][0]
    assert (row["near_optimal"], row["undominated_near_optimal"]) == (2, [1])
    # cell 1 now 0.5 below: only the dominated optimum is near, so no fitness of a and b gets there
    result = ceiling(["a", "b"], columns, _Directions(), np.array([90.0, 89.5, 80.0, 70.0]), ones, ones, budget, 0.3)
    assert result["budgets"][0]["undominated_near_optimal"] == [] and result["reachable"]["all"] == 0
    # lower is better for b: cell 0 (b = 1, the lowest) is beaten by no cell
    columns["b"] = np.array([1.0, 2.0, 4.0, 3.0])
    row = ceiling(["a", "b"], columns, _Directions(["b"]), np.array([90.0, 89.5, 80.0, 70.0]), ones, ones, budget,
                  0.3)["budgets"][0]
    assert row["undominated_near_optimal"] == [0]
    # a score that is not finite is the worst, whichever the direction (as in the combiners)
    columns["b"][0] = -np.inf
    row = ceiling(["a", "b"], columns, _Directions(["b"]), np.array([90.0, 89.5, 80.0, 70.0]), ones, ones, budget,
                  0.3)["budgets"][0]
    assert row["undominated_near_optimal"] == []


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.tuples(*[st.integers(0, 6)] * 3), min_size=2, max_size=12),
       weights=st.tuples(*[st.floats(0.1, 10)] * 3))
def test_the_top_of_a_positively_weighted_sum_is_never_a_dominated_cell(scores, weights):
    """The ceiling's premise: the top of the minmax combiner a search uses, or of any positively weighted sum, is
    among the undominated cells, so a budget the ceiling calls out of reach is out of reach of both."""
    from nasx.plugins import Plugins

    ceiling = _yardstick().ceiling
    matrix = np.array(scores, dtype=float)
    columns = {name: matrix[:, i] for i, name in enumerate("abc")}
    ones = np.ones(len(matrix))
    budget = [{"label": "all", "max_flops": 1.0, "max_params": 1.0, "half": "pick"}]
    minmax = Plugins().get("combiner", "minmax")().combine(matrix, [True] * 3)
    for fitness in (minmax, matrix @ np.array(weights)):
        accuracy = np.zeros(len(matrix))
        accuracy[int(np.argmax(fitness))] = 1.0  # near-optimal (within 0) = the fitness's top alone
        result = ceiling(list("abc"), columns, _Directions(), accuracy, ones, ones, budget, 0.0)
        assert result["reachable"]["all"] == 1


def test_the_yardstick_reads_freereas_stored_scores_of_one_dataset(tmp_path):
    path = tmp_path / "reference.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("index,cifar10_naswot,cifar10_naswot_time_s,cifar10_logsynflow,cifar10_synflow,"
                     "cifar100_naswot,cifar100_logsynflow,cifar100_synflow\n"
                     "1,700.5,0.7,10.0,1e20,600.0,9.0,1e19\n0,650.0,0.6,,2e20,550.0,8.0,2e19\n")
    columns, present = {}, np.zeros(3, dtype=bool)
    _yardstick().read_reference(path, "cifar100", columns, present)
    assert present.tolist() == [True, True, False]
    assert columns["naswot"][:2].tolist() == [550.0, 600.0] and np.isnan(columns["naswot"][2])
    columns = {}
    _yardstick().read_reference(path, "cifar10", columns, np.zeros(3, dtype=bool))
    assert np.isnan(columns["logsynflow"][0]) and columns["synflow"][1] == 1e20


def test_score_agreement_compares_two_settings_of_a_proxy_on_the_same_cells():
    agreement = _benchmark("score_agreement").agreement
    accuracy = np.array([90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 96.0, 97.0])
    same = agreement(accuracy * 2, accuracy + 1, accuracy, ks=(2, 4))
    assert same["kendall"] == pytest.approx(1.0) and same["kendall_best_quarter"] == pytest.approx(1.0)
    assert [row["overlap"] for row in same["top"]] == [2, 4]
    assert same["top"][0]["mean_accuracy"] == [96.5, 96.5] and same["top"][0]["best_accuracy"] == [97.0, 97.0]
    # agreeing on the best quarter (the two best of eight cells) only
    top_only = agreement(accuracy, np.array([7.0, 6, 5, 4, 3, 2, 8, 9]), accuracy, ks=(2,))
    assert top_only["kendall_best_quarter"] == pytest.approx(1.0) and top_only["kendall"] < 0
    # the second setting reverses the order, and its NaN (the best cell's) ranks last
    second = -accuracy.copy()
    second[-1] = np.nan
    reversed_ = agreement(accuracy, second, accuracy, ks=(2,))
    assert reversed_["kendall"] < -0.9
    assert reversed_["top"][0]["overlap"] == 0
    assert reversed_["top"][0]["mean_accuracy"] == [96.5, 90.5]
    assert reversed_["top"][0]["best_accuracy"] == [97.0, 91.0]


def test_score_agreement_reads_a_lower_is_better_proxy_so_that_its_best_cells_come_first(tmp_path):
    import json

    read = _benchmark("score_agreement").read
    path = tmp_path / "correlate.json"
    path.write_text(json.dumps({
        "results": [{"name": "p", "direction": "lower", "median_seconds": 0.5}],
        "architectures": [{"arch": "a", "test_accuracy": 90.0, "p": 3.0},
                          {"arch": "b", "test_accuracy": 95.0, "p": 1.0}]}))
    scores, accuracy, seconds = read(str(path), "p")
    assert scores["b"] > scores["a"] and accuracy == {"a": 90.0, "b": 95.0} and seconds == 0.5


def test_the_start_up_benchmark_pairs_each_seeds_shortest_commands():
    pairs = [{"seed": 0, "serial_s": 12.0, "process_s": 7.5}, {"seed": 0, "serial_s": 11.0, "process_s": 8.0},
             {"seed": 1, "serial_s": 10.0, "process_s": 6.0}, {"seed": 0, "serial_s": 13.0, "process_s": 6.9}]
    best = _benchmark("worker_startup").best_of_repeats(pairs)
    assert [(b["seed"], b["serial_best_s"], b["process_best_s"]) for b in best] == [(0, 11.0, 6.9), (1, 10.0, 6.0)]
    assert [b["ratio"] for b in best] == pytest.approx([6.9 / 11.0, 0.6])
