"""The pipeline's stage graph, read from the project with DVC's own API (never a hard-coded list).

`read_dag` is the I/O edge (it parses dvc.yaml/params.yaml through `dvc.repo.Repo`, so foreach stages
arrive expanded: train_expert@train, scan_corpus@0...). `execution_order` is pure: it turns nodes and
"needs" edges into the order the flow runs them in.
"""
from __future__ import annotations

import os
from pathlib import Path

import networkx as nx


class DagError(ValueError):
    """A target that is not a stage of the pipeline, or a graph that cannot be ordered; phrased for the user."""


def read_dag(project: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(stage names, edges (stage, upstream stage it needs)) of every pipeline stage in `project`.

    Only stages with a command are kept: a `.dvc` file that tracks raw data has nothing to reproduce,
    and dropping it loses no ordering between stages (it has no upstream of its own)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        graph = repo.index.graph
        # DVC's edges point from a stage to the stage whose output it depends on.
        names = {stage: project_addressing(stage, repo.root_dir) for stage in graph.nodes
                 if getattr(stage, "cmd", None)}
        edges = [(names[a], names[b]) for a, b in graph.edges if a in names and b in names]
    return sorted(names.values()), edges


def project_addressing(stage, root_dir: str) -> str:
    """The stage's name as `dvc repro` takes it when run in the project root: "train_expert@train" for a
    stage of the root dvc.yaml, "sub/dvc.yaml:name" for one in another folder. (DVC's own `addressing` is
    relative to the current directory, which is not the project when the flow runs elsewhere.)"""
    dvcfile = os.path.relpath(stage.dvcfile.path, root_dir)
    return stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"


def execution_order(nodes: list[str], edges: list[tuple[str, str]], targets: list[str] | None = None) -> list[str]:
    """Stages to reproduce, each after every stage it needs; ties broken by name so a run's order is stable.

    `edges` are (stage, upstream). With `targets`, only the targets and everything upstream of them are
    kept (what `dvc repro <targets>` would consider); a target may name a foreach group ("train_expert"),
    which stands for all of its items."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    if targets:
        wanted: set[str] = set()
        for target in targets:
            matches = [n for n in nodes if n == target or n.startswith(f"{target}@")]
            if not matches:
                raise DagError(f"no stage named {target!r} in dvc.yaml (stages: {', '.join(sorted(nodes))})")
            for match in matches:
                wanted |= {match} | nx.descendants(graph, match)
        graph = graph.subgraph(wanted).copy()
    try:
        # Reversed edges point from upstream to downstream, the direction a topological sort runs in.
        return list(nx.lexicographical_topological_sort(graph.reverse(copy=True)))
    except nx.NetworkXUnfeasible:
        cycle = " -> ".join(a for a, _ in nx.find_cycle(graph))
        raise DagError(f"the stage graph has a cycle ({cycle}); fix the deps/outs in dvc.yaml") from None
