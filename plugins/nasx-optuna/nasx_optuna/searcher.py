"""Optuna as a nasx searcher: Optuna's samplers propose architectures through the space's categorical encoding
(``Space.categorical``), nasx scores them with its proxies, cache and budget, and tells Optuna the objectives.

Each trial is asked for every gene at once (``study.ask`` with the space's distributions). A trial whose genes make
no valid architecture is told as failed. A candidate the constraints refuse is never scored: its constraint values
(the amount by which it exceeds each limit; ``Trial.set_constraint``) are set and it is told as pruned, which is how
Optuna's constrained samplers (TPE) learn where the infeasible region lies; a feasible trial gets its (non-positive)
constraint values too. A trial that proposes an explored architecture costs no budget and is told its current
values (the fitness of an explored architecture can change as the explored set grows).
"""

from __future__ import annotations

import importlib
import math
import time
import uuid
import warnings
from typing import Any

from nasx import jsonio
from nasx.errors import BudgetExhausted, InvalidGenotype, NasxError
from nasx.interfaces import Searcher
from nasx.options import non_negative, positive
from nasx.search import SearchContext

#: the built-in sampler names -> Optuna's classes
SAMPLERS = {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "random": "RandomSampler", "qmc": "QMCSampler"}
#: samplers that search numbers, not categories: they see each gene as the index of its choice
INDEX_SAMPLERS = ("qmc",)
#: a constraint's name -> the cost field its limit bounds (its Optuna constraint value is field - limit)
CONSTRAINT_FIELDS = {"max-flops": "flops_m", "max-params": "params_m", "max-latency": "latency_ms"}


def sampler_class(spec: str):
    """Optuna's sampler class for a built-in name or an importable class path; NasxError otherwise."""
    import optuna

    if spec in SAMPLERS:
        return getattr(optuna.samplers, SAMPLERS[spec])
    module_name, _, class_name = spec.rpartition(".")
    problem = None
    if not module_name:
        problem = "not a built-in name nor a class path"
    else:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            problem = f"cannot import it ({type(exc).__name__}: {exc})"
        else:
            if isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler):
                return cls
            problem = "it is not an Optuna sampler class"
    raise NasxError(f"unknown Optuna sampler {spec!r}: {problem}; use {', '.join(SAMPLERS)} or a class path such "
                    "as optuna.samplers.CmaEsSampler (-o optuna.sampler=...)")


def _check_sampler(value: Any) -> str | None:
    """Option check: a phrase when ``value`` names no sampler (a class path is imported to know; a built-in name
    is not: this check runs whenever the plugins load, and importing optuna costs every command 0.1 s)."""
    if str(value) in SAMPLERS:
        return None
    try:
        sampler_class(str(value))
    except NasxError as exc:
        return f"must name an Optuna sampler ({exc})"
    return None


class OptunaSearcher(Searcher):
    """Optuna's ``sampler`` (``tpe``, ``nsga2``, ``random``, ``qmc`` or a class path such as
    ``optuna.samplers.CmaEsSampler``), seeded from the search's seed, on the search's objectives (fitness by
    default; several with ``--objective``). ``storage`` (e.g. ``sqlite:///study.db``) keeps the study so that
    ``optuna-dashboard`` can watch it; ``study_name`` names it (an existing study of that name is continued),
    else a new name is made. ``population_size`` sets NSGA-II's (0: Optuna's default). Stops after ``patience``
    trials in a row that explore nothing new."""

    name = "optuna"
    summary = "Optuna as the search engine (TPE, NSGA-II, random, QMC or any sampler) over the space's categorical genes"
    defaults = {"sampler": "tpe", "storage": "", "study_name": "", "population_size": 0, "patience": 200}
    option_checks = {"sampler": _check_sampler, "population_size": non_negative, "patience": positive}

    def search(self, context: SearchContext) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution, IntDistribution
        from optuna.trial import TrialState

        space = context.space
        genes = space.categorical()
        if genes is None:
            raise NasxError(f"searcher 'optuna' needs a space with a categorical encoding; space '{space.name}' "
                            "declares none (Space.categorical)")
        by_index = self.options["sampler"] in INDEX_SAMPLERS
        distributions = {name: IntDistribution(0, len(choices) - 1) if by_index else CategoricalDistribution(choices)
                         for name, choices in genes}
        choices_of = dict(genes)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = self.study(context)
        patience, stalled, refused = self.options["patience"], 0, 0
        while stalled < patience:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = study.ask(distributions)
            values = ({name: choices_of[name][index] for name, index in trial.params.items()} if by_index
                      else dict(trial.params))
            try:
                genotype = space.from_categorical(values)
            except InvalidGenotype as exc:
                trial.set_user_attr("invalid", str(exc))
                study.tell(trial, state=TrialState.FAIL)
                stalled += 1
                continue
            trial.set_user_attr("arch", space.encode(genotype))
            feasible = context.is_feasible(genotype)
            for constraint, amount in constraint_values(context, genotype, feasible).items():
                trial.set_constraint(constraint, amount)
            if not feasible:
                study.tell(trial, state=TrialState.PRUNED)
                stalled += 1
                refused += 1
                continue
            try:
                new = context.evaluate_is_new(genotype)
            except BudgetExhausted:
                study.tell(trial, state=TrialState.FAIL)  # a stored study keeps no trial running forever
                raise
            stalled = 0 if new else stalled + 1
            objective_values = context.objective_values(genotype)
            trial.set_user_attr("scores", jsonio.strict(context.explored[space.key(genotype)].scores))
            if all(math.isfinite(v) for v in objective_values):
                study.tell(trial, list(objective_values))
            else:  # Optuna takes no NaN or infinite objective value
                study.tell(trial, state=TrialState.FAIL)
        if not context.explored and refused:
            limits = ", ".join(c.describe() for c in context.constraints)
            raise NasxError(f"no feasible architecture in {refused} trials under {limits}; loosen the limits")
        context.stop_reason = f"no new architecture in {patience} trials"

    def study(self, context: SearchContext):
        """A new study (or the named one, continued) with the objectives' directions and the seeded sampler."""
        import optuna

        seed = context.rng.randrange(2**31)
        cls = sampler_class(self.options["sampler"])
        arguments: dict[str, Any] = {"seed": seed}
        if cls is optuna.samplers.NSGAIISampler and self.options["population_size"]:
            arguments["population_size"] = max(2, self.options["population_size"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler is "experimental"
            try:
                sampler = cls(**arguments)
            except TypeError:  # a sampler without a seed (or a population) argument
                sampler = cls()
        storage = self.options["storage"] or None
        name = self.options["study_name"] or (
            f"nasx-{context.space.name}-{context.space.dataset}-{time.strftime('%Y%m%d-%H%M%S')}-"
            f"{uuid.uuid4().hex[:6]}" if storage else None)
        directions = ["maximize" if o.maximise else "minimize" for o in context.objectives]
        try:
            study = optuna.create_study(storage=storage, sampler=sampler, study_name=name, directions=directions,
                                        load_if_exists=bool(self.options["study_name"]))
        except ValueError as exc:  # e.g. a named study kept with other directions
            raise NasxError(f"optuna study {name!r}: {exc}") from None
        except Exception as exc:
            if storage and type(exc).__module__.startswith(("sqlalchemy", "optuna")):
                raise NasxError(f"cannot open the optuna storage {storage!r}: {exc}") from None
            raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.name for o in context.objectives])  # the names optuna-dashboard shows
        return study


def constraint_values(context: SearchContext, genotype, feasible: bool) -> dict[str, float]:
    """Optuna's constraint values of a candidate (feasible when all are at most 0): for a FLOPs, parameter or
    latency limit, the cost minus the limit; for another constraint, 1 when it refuses the candidate, else 0. A
    latency is measured only for a candidate the other constraints allow, so an infeasible one may lack it."""
    cost = context.space.cost(genotype)
    allowed_by_costs = all(c.is_feasible(cost) for c in context.constraints if not c.needs_latency)
    if allowed_by_costs and any(c.needs_latency for c in context.constraints):
        cost = context.cost(genotype)  # measured already by the feasibility check
    values = {}
    for constraint in context.constraints:
        if constraint.needs_latency and not allowed_by_costs:
            continue
        field = CONSTRAINT_FIELDS.get(constraint.name)
        if field is not None and "limit" in constraint.options:
            values[constraint.name] = float(getattr(cost, field)) - float(constraint.options["limit"])
        else:
            values[constraint.name] = 0.0 if constraint.is_feasible(cost) else 1.0
    return values
