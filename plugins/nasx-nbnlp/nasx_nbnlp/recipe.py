"""NAS-Bench-NLP recipes: the recurrent cell as a dict of named nodes, without torch.

A recipe maps each node name to ``{"op": OP, "input": [NAME, ...]}``. Inputs are the cell's input ``x``, the
previous hidden states ``h_prev_0 .. h_prev_{k-1}`` or other nodes; the new hidden states are the nodes named
``h_new_0 .. h_new_{k-1}`` (k = 1..3), and ``h_new_0`` is what the layer outputs. Here a recipe is held as
``{name: (op, (input, ...))}``; its canonical string is the benchmark's JSON with sorted keys, compact.

The generator follows ``RecepieGenerator`` of NAS-Bench-NLP's ``search_space.py`` (fmsnew/nas-bench-nlp-release;
read in the fork the-gates-of-Zion/nas-bench-nlp-release at 97b9c33c, identical apart from comments).
"""

from __future__ import annotations

import json
import random
import re
from typing import Mapping

from nasx.errors import InvalidGenotype

INPUT = "x"
LINEAR = "linear"
BLEND = "blend"
ELEMENTWISE = ("elementwise_prod", "elementwise_sum")
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")
OPS = (LINEAR, BLEND, *ELEMENTWISE, *ACTIVATIONS)
#: at most this many hidden states (the benchmark's 1, 2 or 3)
MAX_HIDDEN = 3

#: the GRU cell written as a recipe (one hidden state), a classic cell to try the space on
GRU = {
    "r": {"op": "linear", "input": ["x", "h_prev_0"]}, "r_act": {"op": "activation_sigm", "input": ["r"]},
    "z": {"op": "linear", "input": ["x", "h_prev_0"]}, "z_act": {"op": "activation_sigm", "input": ["z"]},
    "rh": {"op": "elementwise_prod", "input": ["r_act", "h_prev_0"]},
    "h_tilde": {"op": "linear", "input": ["x", "rh"]}, "h_tilde_act": {"op": "activation_tanh", "input": ["h_tilde"]},
    "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "h_tilde_act"]},
}

# RecepieGenerator's distributions: main operation weights 3:1:1:1, a linear node reads 2 or 3 inputs (4:1),
# activations uniform.
MAIN_OPS = (LINEAR, BLEND, *ELEMENTWISE)
MAIN_WEIGHTS = (3, 1, 1, 1)
LINEAR_INPUTS = (2, 3)
LINEAR_INPUT_WEIGHTS = (4, 1)

_PREVIOUS = re.compile(r"h_prev_(\d+)")
_NEW = re.compile(r"h_new_(\d+)")
_NODE = re.compile(r"node_(\d+)")

Recipe = dict  # name -> (op, tuple of input names), in the order the nodes were written


def previous(i: int) -> str:
    return f"h_prev_{i}"


def new(i: int) -> str:
    return f"h_new_{i}"


def hidden_count(recipe: Mapping[str, tuple]) -> int:
    """The number of hidden states: how many ``h_new_<i>`` nodes the recipe has."""
    return sum(1 for name in recipe if _NEW.fullmatch(name))


def base_nodes(hidden: int) -> list[str]:
    """``x`` and the previous hidden states of a cell with ``hidden`` states."""
    return [INPUT] + [previous(i) for i in range(hidden)]


def is_base(name: str) -> bool:
    """Whether ``name`` is one of the cell's inputs (x, h_prev_<i>)."""
    return name == INPUT or _PREVIOUS.fullmatch(name) is not None


def is_output(name: str) -> bool:
    """Whether ``name`` names a new hidden state (h_new_<i>)."""
    return _NEW.fullmatch(name) is not None


# ---------------------------------------------------------------------------------------------------------------
# text


def parse(text: str) -> Recipe:
    """The recipe of a JSON string; InvalidGenotype (one line) when it is not valid JSON of a recipe's shape or
    the recipe is not a valid cell (see ``problem``)."""
    if not isinstance(text, str):
        raise InvalidGenotype(f"an nb-nlp recipe is JSON text, got {type(text).__name__}")
    shown = text if len(text) <= 60 else text[:57] + "..."

    def unique_keys(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise InvalidGenotype(f"malformed nb-nlp recipe {shown!r}: a node is defined twice")
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidGenotype(f"malformed nb-nlp recipe {shown!r}: not JSON ({exc.msg})") from None
    except RecursionError:
        raise InvalidGenotype(f"malformed nb-nlp recipe {shown!r}: nested too deeply") from None
    if not isinstance(data, dict) or not data:
        raise InvalidGenotype(f"malformed nb-nlp recipe {shown!r}: expected a JSON object of nodes "
                              '{"name": {"op": ..., "input": [...]}, ...}')
    recipe = {}
    for name, node in data.items():
        if (not isinstance(node, dict) or set(node) != {"op", "input"} or not isinstance(node["op"], str)
                or not isinstance(node["input"], list) or not all(isinstance(s, str) for s in node["input"])):
            raise InvalidGenotype(f"malformed nb-nlp recipe {shown!r}: node {name!r} must be "
                                  '{"op": "<op>", "input": ["<name>", ...]}')
        recipe[name] = (node["op"], tuple(node["input"]))
    reason = problem(recipe)
    if reason:
        raise InvalidGenotype(f"invalid nb-nlp recipe {shown!r}: {reason}")
    return recipe


def canonical(recipe: Mapping[str, tuple]) -> str:
    """The benchmark's JSON form with sorted keys, without spaces."""
    nodes = {name: {"op": op, "input": list(inputs)} for name, (op, inputs) in recipe.items()}
    return json.dumps(nodes, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------------
# validity


def problem(recipe: Mapping[str, tuple]) -> str | None:
    """Why the recipe is not a cell NAS-Bench-NLP's ``CustomRNNCell`` computes (one phrase), or None.

    A valid cell: known ops with their arity (linear 1+ inputs, activations 1, elementwise ops 2, blend 3),
    distinct inputs that exist (``h_prev_i`` only for i < k), ``x`` read by linear nodes only (the other ops need
    the hidden width), outputs exactly ``h_new_0 .. h_new_{k-1}`` with 1 <= k <= 3, no cycle, every node on a path
    to an output and ``x`` read somewhere.
    """
    hidden = hidden_count(recipe)
    if not 1 <= hidden <= MAX_HIDDEN:
        return f"needs 1 to {MAX_HIDDEN} outputs h_new_0, h_new_1, ..., found {hidden}"
    for name, (op, inputs) in recipe.items():
        if not name or is_base(name):
            return f"{name!r} cannot name a node (x and h_prev_<i> are the cell's inputs)"
        if _NEW.fullmatch(name) and name not in {new(i) for i in range(hidden)}:
            return f"outputs must be h_new_0 .. h_new_{hidden - 1}, found {name!r}"
        if op not in OPS:
            return f"node {name!r} has unknown op {op!r} (ops: {', '.join(OPS)})"
        arity = len(inputs)
        if (op == LINEAR and arity < 1) or (op in ACTIVATIONS and arity != 1) or \
                (op in ELEMENTWISE and arity != 2) or (op == BLEND and arity != 3):
            return f"node {name!r}: {op} cannot take {arity} input{'s' if arity != 1 else ''}"
        if len(set(inputs)) != arity:
            return f"node {name!r} reads an input twice"
        for source in inputs:
            if source == name:
                return f"node {name!r} reads itself"
            match = _PREVIOUS.fullmatch(source)
            if match and (int(match.group(1)) >= hidden or source != previous(int(match.group(1)))):
                return f"node {name!r} reads {source!r}, but the cell has {hidden} hidden state(s)"
            if source == INPUT and op != LINEAR:
                return f"node {name!r}: only linear nodes may read x"
            if not is_base(source) and source not in recipe:
                return f"node {name!r} reads {source!r}, which is not a node"
    cycle = _cycle(recipe)
    if cycle:
        return f"the nodes form a cycle through {cycle!r}"
    reached = _reaching_outputs(recipe)
    dangling = [name for name in recipe if name not in reached]
    if dangling:
        return f"node {dangling[0]!r} does not lead to an output h_new_<i>"
    if INPUT not in reached:
        return "the cell never reads its input x"
    return None


def generator_problem(recipe: Mapping[str, tuple]) -> str | None:
    """The benchmark generator's own sanity check (``generate_random_recepie``): every input (x and each
    h_prev_i) is read, and no output reads a previous hidden state directly. NAS-Bench-NLP's three hand-written
    baselines are exempt (its GRU recipe fails the second rule); generated cells always pass."""
    hidden = hidden_count(recipe)
    reached = _reaching_outputs(recipe)
    for name in base_nodes(hidden):
        if name not in reached:
            return f"{name} is not read"
    for i in range(hidden):
        if any(_PREVIOUS.fullmatch(source) for source in recipe[new(i)][1]):
            return f"{new(i)} reads a previous hidden state directly"
    return None


def _cycle(recipe: Mapping[str, tuple]) -> str | None:
    """A node on a cycle, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in recipe:
        if start in state:
            continue
        stack = [(start, iter(recipe[start][1]))]
        state[start] = 1
        while stack:
            name, sources = stack[-1]
            source = next(sources, None)
            if source is None:
                state[name] = 2
                stack.pop()
            elif source in recipe:
                if state.get(source) == 1:
                    return source
                if source not in state:
                    state[source] = 1
                    stack.append((source, iter(recipe[source][1])))
    return None


def _reaching_outputs(recipe: Mapping[str, tuple]) -> set[str]:
    """Every name (nodes and inputs) on a path to an output: the generator's ``_remove_redundant_nodes`` walk."""
    queue = [name for name in recipe if _NEW.fullmatch(name)]
    seen = set(queue)
    while queue:
        name = queue.pop()
        for source in recipe.get(name, ("", ()))[1]:
            if source not in seen:
                seen.add(source)
                queue.append(source)
    return seen


def prune(recipe: Mapping[str, tuple]) -> Recipe:
    """The recipe without the nodes that lead to no output, in the same order."""
    reached = _reaching_outputs(recipe)
    return {name: node for name, node in recipe.items() if name in reached}


def topological_order(recipe: Mapping[str, tuple]) -> list[str]:
    """The nodes so that each comes after its inputs (ties in the recipe's order)."""
    order, done = [], set()

    def visit(name: str) -> None:
        stack = [(name, iter(recipe[name][1]))]
        while stack:
            current, sources = stack[-1]
            source = next(sources, None)
            if source is None:
                stack.pop()
                if current not in done:
                    done.add(current)
                    order.append(current)
            elif source in recipe and source not in done:
                stack.append((source, iter(recipe[source][1])))

    for name in recipe:
        if name not in done:
            visit(name)
    return order


def descendants(recipe: Mapping[str, tuple], name: str) -> set[str]:
    """Nodes that read ``name`` directly or through other nodes."""
    readers: dict[str, list[str]] = {}
    for node, (_, inputs) in recipe.items():
        for source in inputs:
            readers.setdefault(source, []).append(node)
    found, queue = set(), [name]
    while queue:
        for reader in readers.get(queue.pop(), ()):
            if reader not in found:
                found.add(reader)
                queue.append(reader)
    return found


# ---------------------------------------------------------------------------------------------------------------
# the benchmark's generator


def generate(rng: random.Random, hidden: int, intermediate: int) -> Recipe:
    """One pass of ``generate_random_recepie``, before its sanity check: ``hidden + intermediate`` vertices are
    drawn one after the other (a linear node is always followed by an activation of it, so the count may end one
    higher), ``hidden`` distinct vertices are renamed ``h_new_0..``, and the vertices that lead to no output are
    dropped. The reference draws the inputs of elementwise and blend nodes from an unordered set; here from
    (h_prev_0, h_prev_1, ..., the nodes so far) in that order, so a seed always gives the same recipe."""
    base = base_nodes(hidden)
    recipe: Recipe = {}
    activations: list[str] = []
    count = 0
    while count < hidden + intermediate:
        op = rng.choices(MAIN_OPS, weights=MAIN_WEIGHTS)[0]
        if op == LINEAR:
            candidates = base + activations
            wanted = min(rng.choices(LINEAR_INPUTS, weights=LINEAR_INPUT_WEIGHTS)[0], len(candidates))
            recipe[f"node_{count}"] = (LINEAR, tuple(rng.sample(candidates, wanted)))
            count += 1
            recipe[f"node_{count}"] = (rng.choice(ACTIVATIONS), (f"node_{count - 1}",))
            activations.append(f"node_{count}")
            count += 1
        else:
            wanted = 3 if op == BLEND else 2
            candidates = base[1:] + list(recipe)  # never x: these ops need the hidden width
            if wanted <= len(candidates):
                recipe[f"node_{count}"] = (op, tuple(rng.sample(candidates, wanted)))
                count += 1
    renamed = {old: new(i) for i, old in enumerate(rng.sample(list(recipe), hidden))}
    recipe = {renamed.get(name, name): (op, tuple(renamed.get(s, s) for s in inputs))
              for name, (op, inputs) in recipe.items()}
    return prune(recipe)


def fresh_names(recipe: Mapping[str, tuple], count: int) -> list[str]:
    """``count`` names ``node_<n>`` that the recipe does not use, numbered after its highest ``node_<n>``."""
    numbers = [int(m.group(1)) for m in map(_NODE.fullmatch, recipe) if m]
    first = max(numbers, default=-1) + 1
    names, n = [], first
    while len(names) < count:
        if f"node_{n}" not in recipe:
            names.append(f"node_{n}")
        n += 1
    return names
