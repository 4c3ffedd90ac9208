"""Prefect flow: the DVC pipeline, one task per stage, in the DAG order read from the project.

    python -m flows.pipeline [--project DIR] [--target STAGE ...] [--ray-address ADDR]

Each task runs `dvc repro --single-item <stage>`, so DVC decides whether the stage is stale: an up-to-date
stage is a ~1 s no-op and is reported as "skipped". Stages run one after another in topological order:
`dvc repro` holds the repository lock for its whole run, so two stages of one workspace cannot run at the
same time; the parallelism is inside each stage (Ray tasks and Ray Train workers).

Retries (params flow.retries / flow.retry_delay_seconds) apply only to transient failures: a stage that
exits with code 2 (lipforge's StageError/ParamsError: bad input or params) or that DVC refuses to start
(invalid dvc.yaml, missing dependency) fails at once, since retrying would fail the same way; see
`flows.dvc_cli.is_transient_failure`.

The Ray cluster (`ray_address`) reaches the stages as RAY_ADDRESS (see `flows.dvc_cli.dvc_env`).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context

from flows.dag import execution_order, read_dag
from flows.dvc_cli import dvc_env, is_transient_failure, ray_address_problem, repro_outcome, run_dvc, tail
from flows.run_id import new_run_id
from lipforge.params import load_params

LOG_TAIL_LINES = 40


class StageFailed(RuntimeError):
    """A stage's `dvc repro` failed; `transient` says whether a retry may help."""

    def __init__(self, stage: str, returncode: int, output_tail: str, transient: bool):
        kind = "transient failure: retried up to params flow.retries times" if transient else \
            "not retried: fix the input or params it names"
        super().__init__(f"stage {stage} failed (dvc exit {returncode}; {kind}):\n{output_tail}")
        self.stage, self.transient, self.output_tail = stage, transient, output_tail


def retry_only_transient(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: retry a stage only when its failure is transient."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, StageFailed) and exc.transient


# NO_CACHE: whether a stage is stale is DVC's call on every run, never a Prefect cache hit.
@task(name="dvc-stage", retry_condition_fn=retry_only_transient, cache_policy=NO_CACHE)
def reproduce_stage(project: str, stage: str, ray_address: str | None) -> dict:
    logger = get_run_logger()
    attempt = get_run_context().task_run.run_count
    t0 = time.monotonic()
    result = run_dvc(Path(project), "repro", "--single-item", stage, env=dvc_env(ray_address))
    seconds = round(time.monotonic() - t0, 2)
    if not result.ok:
        transient = is_transient_failure(result.output)
        logger.error("stage %s failed after %.1f s (attempt %d):\n%s", stage, seconds, attempt,
                     tail(result.output, LOG_TAIL_LINES))
        raise StageFailed(stage, result.returncode, tail(result.output, LOG_TAIL_LINES), transient)
    outcome = repro_outcome(stage, result.output)
    logger.info("stage %s %s in %.1f s (attempt %d); dvc output:\n%s", stage, outcome, seconds, attempt,
                tail(result.output, LOG_TAIL_LINES))
    return {"stage": stage, "outcome": outcome, "seconds": seconds, "attempts": attempt}


def run_stages(project: Path, stages: list[str], ray_address: str | None, retries: int,
               retry_delay_seconds: float) -> list[dict]:
    """Reproduce `stages` in order as Prefect tasks; raises StageFailed at the first stage that fails."""
    stage_task = reproduce_stage.with_options(retries=retries, retry_delay_seconds=retry_delay_seconds)
    return [stage_task.with_options(task_run_name=stage)(str(project), stage, ray_address) for stage in stages]


def current_run_id() -> str:
    ctx = get_run_context()
    return new_run_id(datetime.now(timezone.utc), str(ctx.flow_run.id) if ctx.flow_run else None)


def record_history(project: Path, kind: str, accepted: bool | None, reason: str, run_id: str,
                   with_metrics: bool = True) -> dict:
    from lipforge.history import record_run

    # A run that failed before `evaluate` left an older run's reports/metrics.json: not this run's metrics.
    extra = {} if with_metrics else {"metrics_path": None}
    return record_run(project, kind, accepted, reason=reason, run_id=run_id, **extra)


@flow(name="lipforge-pipeline")
def pipeline_flow(project_dir: str = ".", targets: list[str] | None = None, ray_address: str | None = None,
                  kind: str = "pipeline", record: bool = True, run_id: str | None = None) -> dict:
    """Reproduce the pipeline of `project_dir` (or `targets` and what they need) stage by stage.

    Appends a run-history row (lipforge.history.record_run) unless `record` is false: the nightly flow runs
    this as a subflow and records one row itself, with its accept/reject decision."""
    from lipforge.history import KINDS

    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not a run-history kind ({', '.join(KINDS)})")
    logger = get_run_logger()
    project = Path(project_dir).resolve()
    params = load_params(project / "params.yaml")
    problem = ray_address_problem(params.ray.address, params.ray.num_cpus, ray_address)
    if problem:
        raise ValueError(problem)
    run_id = run_id or current_run_id()
    stages = execution_order(*read_dag(project), targets=targets)
    logger.info("run %s: %d stages in DAG order: %s", run_id, len(stages), ", ".join(stages))
    try:
        results = run_stages(project, stages, ray_address, params.flow.retries, params.flow.retry_delay_seconds)
    except StageFailed as err:
        if record:
            record_history(project, kind, None, f"stage {err.stage} failed: {err.output_tail[-500:]}", run_id,
                           with_metrics=False)
        raise
    ran = [r["stage"] for r in results if r["outcome"] != "skipped"]
    summary = f"{len(ran)} of {len(results)} stages reproduced ({', '.join(ran) or 'all up to date'})"
    logger.info("run %s: %s in %.1f s", run_id, summary, sum(r["seconds"] for r in results))
    if record:
        record_history(project, kind, None, summary, run_id)
    return {"run_id": run_id, "stages": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", help="project root (where dvc.yaml and params.yaml are)")
    parser.add_argument("--target", action="append", dest="targets", help="stage to reproduce with its upstream "
                        "(repeatable; default: every stage)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster the stages join (e.g. 10.0.0.5:6379 or "
                        "ray://head:10001); default: params.yaml ray.address")
    args = parser.parse_args(argv)
    pipeline_flow(project_dir=args.project, targets=args.targets, ray_address=args.ray_address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
