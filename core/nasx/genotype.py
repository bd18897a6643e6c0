"""Genotype helpers: genotypes are networkx DiGraphs, frozen once built."""

from __future__ import annotations

import hashlib

import networkx as nx


def frozen(graph: nx.DiGraph) -> nx.DiGraph:
    """Freeze a genotype so that no operator can change it in place."""
    return nx.freeze(graph)


def stable_hash(space_name: str, canonical: str) -> str:
    """A 16-hex-digit key of a genotype that does not depend on the process (unlike ``hash``)."""
    return hashlib.sha256(f"{space_name}\0{canonical}".encode()).hexdigest()[:16]
