"""Per-clip fan-out on Ray. The same code runs on a laptop (local Ray) and on a cluster (params.ray.address)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from lipforge.cpu_allocator import keep_freed_memory, worker_env
from lipforge.params import RayParams
from lipforge.progress import progress_bar


@dataclass(frozen=True)
class TaskFailure:
    """A per-clip task that raised: the stage turns it into a rejects row instead of stopping."""

    item: Any
    error: str


def _quiet_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")


PROJECT_DIR_ENV = "LIPFORGE_PROJECT_DIR"


def setup_ray_worker() -> None:
    """Ray worker setup hook (see `ray_session`).

    - Work in the stage's project directory: stages hand workers project-relative paths (data/...), and a
      worker of a cluster started elsewhere (`ray start` in another folder) would otherwise resolve them
      against that folder. On a multi-node cluster the project must be on a shared filesystem at that path.
    - Ray Train's PlacementGroupCleaner asks the State API once a second whether the train controller lives;
      without the dashboard (we start Ray without it: seconds of start-up and hundreds of MB) that API is
      absent and every ask logs a warning, flooding a stage's output. Silence that one logger.
    - Keep freed memory in the worker (`lipforge.cpu_allocator`): training and evaluation tensors reuse it instead
      of page-faulting fresh memory every step. Speed only, the arithmetic is the same. The environment
      `ray_session` gives the workers already set it up at process start, before any thread took an arena; this
      applies it (for threads started later) where a worker was started without it, and sets the status that
      `allocator_status` reports in the worker's provenance."""
    import logging

    keep_freed_memory()
    project = os.environ.get(PROJECT_DIR_ENV)
    if project and os.path.isdir(project):
        os.chdir(project)
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)


# Every Ray cluster this process worked on, in order (one entry per `ray_session`): a stage's provenance
# names them, so lineage can tell a laptop run from a cluster run. Process-global because the stage entry
# point that writes provenance does not see the sessions its stage opens.
_CLUSTERS_USED: list[dict] = []


def describe_cluster(address: str | None, gcs_address: str, ray_version: str, nodes: list[dict],
                     resources: dict[str, float]) -> dict:
    """The provenance record of one Ray cluster: `address` is the params setting (None = a local Ray)."""
    return {
        "address": address if address is not None else "local",
        "gcs_address": gcs_address,
        "ray_version": ray_version,
        "nodes": sum(1 for n in nodes if n.get("Alive", True)),
        "cpus": float(resources.get("CPU", 0.0)),
        "gpus": float(resources.get("GPU", 0.0)),
    }


def clusters_used() -> list[dict]:
    """Copies of the cluster records of this process's Ray sessions, oldest first."""
    return [dict(c) for c in _CLUSTERS_USED]


def forget_clusters() -> None:
    """Empty the record (`stage_main` does, before its stage runs: a process may run several stages)."""
    _CLUSTERS_USED.clear()


def _record_cluster(address: str | None) -> str:
    import ray

    gcs_address = ray.get_runtime_context().gcs_address
    record = describe_cluster(address, gcs_address, ray.__version__, ray.nodes(), ray.cluster_resources())
    # A stage may open several sessions on the same cluster (one per training run): name it once.
    if record not in _CLUSTERS_USED:
        _CLUSTERS_USED.append(record)
    return gcs_address


@contextmanager
def ray_session(cfg: RayParams):
    """Join the configured cluster, or start a local Ray; shut down only what we started.

    Records the cluster (see `clusters_used`) for the stage's provenance."""
    import ray

    _quiet_env()
    if ray.is_initialized():
        yield _record_cluster(cfg.address)
        return
    kwargs: dict[str, Any] = dict(address=cfg.address, include_dashboard=False, logging_level="WARNING",
                                  log_to_driver=True,
                                  runtime_env={"worker_process_setup_hook": "lipforge.parallel.setup_ray_worker",
                                               "env_vars": {PROJECT_DIR_ENV: os.getcwd(), **worker_env()}})
    if cfg.address is None and cfg.num_cpus is not None:
        kwargs["num_cpus"] = cfg.num_cpus
    ray.init(**kwargs)
    try:
        yield _record_cluster(cfg.address)
    finally:
        ray.shutdown()


def map_tasks(fn: Callable, items: Iterable, cfg: RayParams, desc: str, **shared) -> list:
    """Run fn(item, **shared) for every item as Ray tasks; results in input order.

    `shared` values are put in the object store once. A task that raises yields a TaskFailure for its
    item. Needs an active `ray_session`.
    """
    import ray

    items = list(items)
    if not items:
        return []
    shared_refs = {k: ray.put(v) for k, v in shared.items()}
    remote = ray.remote(num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task, max_retries=1)(fn)
    refs = [remote.remote(item, **shared_refs) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(refs)
    pending = list(refs)
    with progress_bar(desc, total=len(refs)) as advance:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - a clip's failure must not stop the stage
                    cause = getattr(err, "cause", None) or err
                    last_line = str(cause).splitlines()[-1] if str(cause) else ""
                    results[i] = TaskFailure(items[i], f"{type(cause).__name__}: {last_line}")
                advance()
    return results
