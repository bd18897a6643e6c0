"""The NAS-Bench-NLP space (``nb-nlp``): recurrent cells given as the benchmark's recipes, in its language model.

Genotype: a frozen DiGraph whose nodes are the recipe's nodes (attribute ``op``) and the cell inputs it reads
(``x``, ``h_prev_<i>``, op ``input``); an edge s -> v with attribute ``slot`` says that v's ``slot``-th input is s.
String form: the recipe as compact JSON with sorted keys, e.g. the benchmark's RNN baseline
``{"f":{"input":["x","h_prev_0"],"op":"linear"},"h_new_0":{"input":["f"],"op":"activation_tanh"}}``.
Two recipes that differ only in node names are different strings (and keys), as in the benchmark's own files.
"""

from __future__ import annotations

import random
from typing import ClassVar

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen
from nasx.interfaces import Cost, EvolvableSpace
from nasx.options import one_of, positive
from nasx_nbnlp import recipe as recipes
from nasx_nbnlp.recipe import (ACTIVATIONS, ELEMENTWISE, INPUT, LINEAR, MAX_HIDDEN, base_nodes, canonical,
                               descendants, fresh_names, generate, generator_problem, hidden_count, is_output, new,
                               problem, prune)
from nasx_nbnlp.sizes import VOCABULARY, params_and_flops
from nasx_nbnlp.tokens import SEQUENCE_LENGTH

# Attempts before an operator gives up; a valid result comes within a few tries in practice.
MAX_TRIES = 10_000
CROSSOVER_TRIES = 200

#: proxies whose definition does not carry over to these networks, and why
UNDEFINED_PROXIES = {
    "naswot": "its kernel compares binary ReLU codes, and these cells have no ReLU (tanh, sigmoid, leaky ReLU)",
    "nregions": "it counts ReLU activation patterns of image patches",
    "ni": "it measures the pooling layers of image networks, and these networks have none",
    "jacob_cov": "it needs Jacobians with respect to continuous input images, and the inputs are token ids",
    "ntk": "it needs one logit vector per input image, and a language model has one per token",
    "skip": "it counts skip connections of image cells, which recipes do not have",
    "az_expressivity": "it reads the feature maps after an image network's stem and each of its blocks",
    "az_progressivity": "it reads the feature maps after an image network's stem and each of its blocks",
    "az_trainability": "it takes the Jacobian of each block of an image network's stem-and-blocks sequence",
    "zen": "it perturbs continuous input images with Gaussian noise, and the inputs are token ids",
    "vkdnw": "its Fisher information takes one gradient per class and input, and a language model has one class per "
             "word of its vocabulary at every token",
    "vkdnw_single": "its Fisher information takes one gradient per class and input, and a language model has one "
                    "class per word of its vocabulary at every token",
}


class NbNlpSpace(EvolvableSpace):
    name = "nb-nlp"
    summary = "NAS-Bench-NLP: recurrent cells (recipes of up to 3 hidden states) in a 3-layer language model"
    datasets: ClassVar[tuple[str, ...]] = ("ptb", "wikitext-2")
    default_dataset = "ptb"
    version = "1"  # bump when the networks or the genotype encoding change
    cost_is_exact = True  # cost() counts every parameter of build()
    # intermediate_vertices: the generator's vertex budget besides the hidden states; 13 is the only value whose
    # cells reach, and do not exceed, the highest node numbers of the benchmark's recipes for each number of hidden
    # states (plugins/nasx-nbnlp/README.md). ground_truth: how the PTB runs of a recipe are pooled (see oracle.py).
    defaults = {"intermediate_vertices": 13, "ground_truth": "replicates"}
    option_checks = {"intermediate_vertices": positive, "ground_truth": one_of("replicates", "same-id")}

    # genotype <-> recipe -------------------------------------------------------------------------
    @staticmethod
    def recipe(genotype: nx.DiGraph) -> dict:
        """{name: (op, inputs)} of a genotype."""
        try:
            cell = {}
            for name, op in genotype.nodes(data="op"):
                if op != "input":
                    slots = sorted((slot, source) for source, _, slot in genotype.in_edges(name, data="slot"))
                    cell[name] = (op, tuple(source for _, source in slots))
            return cell
        except (TypeError, AttributeError) as exc:
            raise InvalidGenotype(f"not an nb-nlp genotype ({exc})") from None

    @staticmethod
    def from_recipe(cell: dict) -> nx.DiGraph:
        """The genotype of a recipe; InvalidGenotype when it is not a valid cell."""
        reason = problem(cell)
        if reason:
            raise InvalidGenotype(f"invalid nb-nlp recipe: {reason}")
        graph = nx.DiGraph()
        for name, (op, _) in cell.items():
            graph.add_node(name, op=op)
        for name, (_, inputs) in cell.items():
            for slot, source in enumerate(inputs):
                if source not in graph:
                    graph.add_node(source, op="input")
                graph.add_edge(source, name, slot=slot)
        return frozen(graph)

    def encode(self, genotype: nx.DiGraph) -> str:
        return canonical(self.recipe(genotype))

    def decode(self, text: str) -> nx.DiGraph:
        return self.from_recipe(recipes.parse(text))

    # dataset facts -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return VOCABULARY[self.dataset]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One sequence of token ids as a 1 x T "image" (T = the benchmark's bptt, 70)."""
        return (1, 1, SEQUENCE_LENGTH)

    def input_batch(self, path, size: int):
        """Token sequences: uniform random ids (seeded) without a path, else cut from the text file at ``path``."""
        from nasx_nbnlp.tokens import synthetic_tokens, text_tokens

        if path is None:
            return synthetic_tokens(self.num_classes, size)
        return text_tokens(path, self.num_classes, size)

    def proxy_problem(self, proxy) -> str | None:
        return UNDEFINED_PROXIES.get(proxy.name)

    # operators ----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> nx.DiGraph:
        """As NAS-Bench-NLP's generator: 1, 2 or 3 hidden states (uniformly), ``intermediate_vertices`` more
        vertices, drawn again until the cell passes the generator's sanity check."""
        intermediate = int(self.options["intermediate_vertices"])
        hidden = rng.randint(1, MAX_HIDDEN)  # drawn once: redrawing it with each try would favour one state
        for _ in range(MAX_TRIES):
            cell = generate(rng, hidden, intermediate)
            if problem(cell) is None and generator_problem(cell) is None:
                return self.from_recipe(cell)
        raise InvalidGenotype("nb-nlp: no valid sample found")  # pragma: no cover

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """One change, then the nodes that no longer lead to an output are dropped: an activation or an
        elementwise op replaced by another of its kind; one input of a node rewired to another node or cell input;
        a linear node given one input more or less (1 to 3); a new linear node and its activation inserted on an
        input; or a node removed, its readers reading one of its inputs instead. Retried until the child is a
        valid cell with another string, which also passes the generator's sanity check when the parent does."""
        parent = self.recipe(genotype)
        original = canonical(parent)
        strict = generator_problem(parent) is None
        for _ in range(MAX_TRIES):
            child = _mutation(parent, rng)
            if child is None:
                continue
            child = prune(child)
            if problem(child) or (strict and generator_problem(child)) or canonical(child) == original:
                continue
            return self.from_recipe(child)
        raise InvalidGenotype("nb-nlp: no mutation changes this recipe")  # pragma: no cover

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """Nodes are matched by name (the generator names them by the step that drew them): the child takes
        each node's definition from a parent that has it, the number of hidden states from one parent, and drops
        the nodes that lead to no output; retried until the child is valid (and passes the generator's sanity
        check when both parents do) and differs from both parents, else a valid copy of a parent."""
        parents = [self.recipe(first), self.recipe(second)]
        strict = all(generator_problem(p) is None for p in parents)
        names = list(dict.fromkeys([*parents[0], *parents[1]]))
        texts = {canonical(p) for p in parents}
        found = None  # the first valid child, kept in case every valid child is a copy of a parent
        for _ in range(CROSSOVER_TRIES):
            hidden = hidden_count(rng.choice(parents))
            outputs = {new(i) for i in range(hidden)}
            child = {}
            for name in names:
                if is_output(name) and name not in outputs:
                    continue  # not an output of this child
                holders = [p for p in parents if name in p]
                child[name] = rng.choice(holders)[name]
            child = prune(child)
            if problem(child) is None and (not strict or generator_problem(child) is None):
                if canonical(child) not in texts:
                    return self.from_recipe(child)
                found = found or child
        return self.from_recipe(found) if found else rng.choice([first, second])

    # costs and networks --------------------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """The benchmark's parameter count and FLOPs per token (see ``sizes.params_and_flops``)."""
        params, flops = params_and_flops(self.recipe(genotype), self.num_classes)
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    def build(self, genotype: nx.DiGraph):
        """The language model with its dropouts recorded but off, so every proxy is deterministic."""
        from nasx_nbnlp.network import LanguageModel

        return LanguageModel(self.recipe(genotype), self.num_classes)

    def build_for_training(self, genotype: nx.DiGraph):
        """The language model as the benchmark trained it: its dropouts act in training mode."""
        from nasx_nbnlp.network import LanguageModel

        return LanguageModel(self.recipe(genotype), self.num_classes, dropout_active=True)

    # ground truth ------------------------------------------------------------------------------
    def oracle(self, data_dir):
        from nasx_nbnlp.oracle import find_nbnlp_oracle

        return find_nbnlp_oracle(self, data_dir)


def _mutation(parent: dict, rng: random.Random) -> dict | None:
    """One random change of a recipe (not yet pruned or checked); None when the drawn change is impossible."""
    cell = dict(parent)
    names = list(cell)
    hidden = hidden_count(cell)
    inputs_of_cell = base_nodes(hidden)
    kinds = {name: op for name, (op, _) in cell.items()}
    moves = ["rewire", "grow", "shrink"]
    if any(op in ACTIVATIONS for op in kinds.values()):
        moves.append("activation")
    if any(op in ELEMENTWISE for op in kinds.values()):
        moves.append("elementwise")
    if any(op == LINEAR for op in kinds.values()):
        moves.append("arity")
    move = rng.choice(moves)

    def sources_for(node: str) -> list[str]:
        """What ``node`` may read without a cycle: cell inputs (x only for linear nodes) and other nodes."""
        below = descendants(cell, node) | {node}
        allowed = [s for s in inputs_of_cell if s != INPUT or kinds[node] == LINEAR]
        return allowed + [n for n in names if n not in below]

    if move == "activation":
        name = rng.choice([n for n, op in kinds.items() if op in ACTIVATIONS])
        cell[name] = (rng.choice([a for a in ACTIVATIONS if a != kinds[name]]), cell[name][1])
    elif move == "elementwise":
        name = rng.choice([n for n, op in kinds.items() if op in ELEMENTWISE])
        cell[name] = (next(e for e in ELEMENTWISE if e != kinds[name]), cell[name][1])
    elif move == "rewire":
        name = rng.choice(names)
        op, inputs = cell[name]
        slot = rng.randrange(len(inputs))
        choices = [s for s in sources_for(name) if s not in inputs]
        if not choices:
            return None
        cell[name] = (op, inputs[:slot] + (rng.choice(choices),) + inputs[slot + 1:])
    elif move == "arity":
        name = rng.choice([n for n, op in kinds.items() if op == LINEAR])
        op, inputs = cell[name]
        if len(inputs) >= 3 or (len(inputs) == 2 and rng.random() < 0.5):
            slot = rng.randrange(len(inputs))
            cell[name] = (op, inputs[:slot] + inputs[slot + 1:])
        else:
            choices = [s for s in sources_for(name) if s not in inputs]
            if not choices:
                return None
            cell[name] = (op, inputs + (rng.choice(choices),))
    elif move == "grow":
        # reader's input u becomes activation(linear(u, other)), as the generator adds a linear node
        reader = rng.choice(names)
        op, inputs = cell[reader]
        slot = rng.randrange(len(inputs))
        source = inputs[slot]
        below = descendants(cell, reader) | {reader}
        others = [s for s in inputs_of_cell + [n for n, o in kinds.items() if o in ACTIVATIONS]
                  if s != source and s not in below]
        if not others:
            return None
        linear, activation = fresh_names(cell, 2)
        pair = [source, rng.choice(others)]
        rng.shuffle(pair)
        cell[linear] = (LINEAR, tuple(pair))
        cell[activation] = (rng.choice(ACTIVATIONS), (linear,))
        cell[reader] = (op, inputs[:slot] + (activation,) + inputs[slot + 1:])
    else:  # shrink: a node's readers read one of its inputs instead
        removable = [n for n in names if not is_output(n)]
        if not removable:
            return None
        name = rng.choice(removable)
        readers = [n for n in names if name in cell[n][1]]
        replacement = rng.choice(cell[name][1])
        for reader in readers:
            op, inputs = cell[reader]
            if replacement in inputs or (replacement == INPUT and op != LINEAR):
                return None
            cell[reader] = (op, tuple(replacement if s == name else s for s in inputs))
        del cell[name]
    return cell
