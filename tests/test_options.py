"""Declared option checks: the ready-made checks, the type and NaN rules every option follows, and the checks
of every installed component."""

import math

import numpy as np
import pytest

from nasx.errors import NasxError
from nasx.interfaces import Proxy, Searcher
from nasx.options import (Check, declaration_problem, finite, in_range, non_negative, one_of, positive,
                          probability)
from nasx.plugins import Plugins


class Checked(Proxy):
    name = "checked"
    needs_network = False
    defaults = {"batch_size": 64, "repeats": 3, "rate": 0.5, "limit": math.inf, "mode": "fast", "exact": False}
    option_checks = {"batch_size": non_negative, "repeats": positive, "rate": probability,
                     "limit": positive, "mode": one_of("fast", "slow")}

    def score_genotype(self, space, genotype):
        return 0.0


@pytest.mark.parametrize(
    "check, good, bad, phrase",
    [
        (positive, [1, 0.5, math.inf], [0, -2, math.nan], "must be a positive"),
        (non_negative, [0, 3, 0.0], [-1, -0.1, math.nan], "must be a non-negative"),
        (finite, [0.0, -1e300], [math.inf, -math.inf, math.nan], "must be a finite number"),
        (probability, [0, 0.25, 1], [-0.01, 1.01, math.nan], "must be a probability between 0 and 1"),
        (in_range(0, 1), [0, 1, 0.97], [-1, 1.5, math.nan], "must be between 0 and 1"),
        (one_of("specs", "cells"), ["specs", "cells"], ["hashes", ""], "must be one of 'specs', 'cells'"),
    ],
)
def test_ready_made_checks_accept_and_refuse(check, good, bad, phrase):
    assert [check(value) for value in good] == [None] * len(good)
    for value in bad:
        assert check(value).startswith(phrase), value


def test_a_check_names_integers_and_numbers_apart():
    assert positive(-4) == "must be a positive integer"
    assert positive(-0.5) == "must be a positive number"
    assert positive(False) == "must be a positive number"  # bool is an int, but not a count


def test_a_condition_that_cannot_compare_the_value_refuses_it():
    assert Check(lambda value: value > 0, "positive")("x") == "must be positive"


def test_building_with_a_bad_option_is_a_one_line_error_naming_option_and_value():
    with pytest.raises(NasxError) as caught:
        Checked(batch_size=-4)
    assert str(caught.value) == "checked.batch_size must be a non-negative integer, got -4"
    with pytest.raises(NasxError, match=r"^checked\.mode must be one of 'fast', 'slow', got 'fastest'$"):
        Checked(mode="fastest")
    with pytest.raises(NasxError, match=r"^checked\.rate must be a probability between 0 and 1, got 1\.5$"):
        Checked(rate=1.5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": "x"}, "checked.batch_size must be an integer, got 'x'"),
        ({"batch_size": 3.5}, "checked.batch_size must be an integer, got 3.5"),
        ({"repeats": True}, "checked.repeats must be an integer, got True"),
        ({"rate": "0.5"}, "checked.rate must be a number, got '0.5'"),
        ({"rate": True}, "checked.rate must be a number, got True"),
        ({"mode": 1}, "checked.mode must be a string, got 1"),
        ({"exact": 1}, "checked.exact must be true or false, got 1"),
    ],
)
def test_a_value_of_another_type_than_the_default_is_refused(options, message):
    with pytest.raises(NasxError) as caught:
        Checked(**options)
    assert str(caught.value) == message


def test_ints_are_accepted_for_floats_and_numpy_integers_for_ints():
    built = Checked(rate=1, batch_size=np.int64(8))
    assert built.options["rate"] == 1.0 and type(built.options["rate"]) is float
    assert built.options["batch_size"] == 8 and type(built.options["batch_size"]) is int


def test_float_options_refuse_nan_and_take_inf_only_when_the_default_is_inf():
    with pytest.raises(NasxError, match="checked.rate must be a number, got nan"):
        Checked(rate=math.nan)
    with pytest.raises(NasxError, match="checked.rate must be a finite number, got inf"):
        Checked(rate=math.inf)
    with pytest.raises(NasxError, match="checked.limit must be a number, got nan"):
        Checked(limit=math.nan)
    assert Checked(limit=math.inf).options["limit"] == math.inf


def test_the_nan_rule_holds_for_float_options_without_declared_checks():
    class Annealer(Searcher):
        name = "annealer"
        defaults = {"temperature": 0.1}

        def search(self, context):
            pass

    with pytest.raises(NasxError, match="annealer.temperature must be a number, got nan"):
        Annealer(temperature=float("nan"))


def test_defaults_are_kept_and_checked_options_stored():
    assert Checked().options == Checked.defaults
    assert Checked(batch_size=0).options["batch_size"] == 0  # 0 takes the whole input batch


def test_a_declaration_with_a_check_of_an_unknown_option_or_a_refused_default_is_reported():
    class Misspelt(Checked):
        option_checks = {"batchsize": positive}

    class SelfRefusing(Checked):
        defaults = {**Checked.defaults, "repeats": 0}

    assert "batchsize" in declaration_problem(Misspelt)
    assert "checked.repeats must be a positive integer" in declaration_problem(SelfRefusing)
    assert declaration_problem(Checked) is None


def test_every_installed_component_declares_checks_its_defaults_pass():
    infos = Plugins(blocked=[]).all()
    assert len(infos) > 20
    for info in infos:
        assert declaration_problem(info.cls) is None, info
        assert set(info.cls.option_checks) <= set(info.cls.defaults), info


#: numeric options for which every value has a meaning
UNBOUNDED = {
    "noise_seed": "any int seeds the noise",
    "limit": "a constraint's bound; one that nothing meets is reported by the search (NaN is refused anyway)",
}


def test_every_numeric_option_of_the_installed_components_is_checked():
    """Counts, sizes, rates and temperatures must not be left without a range: 0 or -1 would break a search."""
    for info in Plugins(blocked=[]).all():
        for option, default in info.cls.defaults.items():
            if isinstance(default, (int, float)) and not isinstance(default, bool) and option not in UNBOUNDED:
                assert option in info.cls.option_checks, f"{info.kind} {info.name}: option {option} has no check"


@pytest.mark.parametrize(
    "kind, name, options, phrase",
    [
        ("proxy", "naswot", {"batch_size": -4}, "naswot.batch_size must be a non-negative integer, got -4"),
        ("proxy", "naswot", {"repeats": 0}, "naswot.repeats must be a positive integer, got 0"),
        ("proxy", "jacob_cov", {"batch_size": 1}, "jacob_cov.batch_size must be 0 (the whole input batch) or at"),
        ("proxy", "epsilon", {"weights": "1e-7"}, "epsilon.weights must be two numbers 'w1,w2'"),
        ("proxy", "ni", {"noise_std": -1.0}, "ni.noise_std must be a non-negative number"),
        ("proxy", "nregions", {"samples": 0}, "nregions.samples must be a positive integer"),
        ("searcher", "freerea", {"population_size": 0}, "freerea.population_size must be a positive integer"),
        ("searcher", "ga", {"mutation_rate": 1.5}, "ga.mutation_rate must be a probability between 0 and 1"),
        ("searcher", "sa", {"initial_temperature": 0.0}, "sa.initial_temperature must be a positive number"),
        ("searcher", "sa", {"cooling": 1.2}, "sa.cooling must be between 0 and 1"),
        ("searcher", "random", {"n": -1}, "random.n must be a non-negative integer"),
        ("space", "nb101", {"sampling": "hashes"}, "nb101.sampling must be one of 'specs', 'cells'"),
        ("constraint", "max-flops", {"limit": math.nan}, "max-flops.limit must be a number, got nan"),
    ],
)
def test_installed_components_refuse_values_outside_their_range(kind, name, options, phrase):
    cls = Plugins(blocked=[]).get(kind, name)
    with pytest.raises(NasxError) as caught:
        cls(**options)
    assert str(caught.value).startswith(phrase)
    assert "\n" not in str(caught.value)


def test_values_with_a_meaning_stay_accepted():
    plugins = Plugins(blocked=[])
    assert plugins.get("proxy", "naswot")(batch_size=0).batch_size == 0  # the whole input batch
    assert plugins.get("searcher", "random")(n=0).options["n"] == 0  # until the budget ends
    assert plugins.get("searcher", "sa")(cooling=0).options["cooling"] == 0.0  # straight to the final temperature
    assert plugins.get("proxy", "epsilon")(weights="").options["weights"] == ""  # the space's pair
    assert plugins.get("constraint", "max-params")().options["limit"] == math.inf  # no limit
    assert plugins.get("constraint", "max-params")(limit=-1).options["limit"] == -1.0  # nothing is feasible
