"""Prefect flow: the nightly retrain. Ingest new clips, reproduce the pipeline, gate the new metrics against the
last accepted run, then keep the new model (accept) or bring the previous one back (reject).

    python -m flows.nightly [--project DIR] [--ray-address ADDR]      (one run now)
    python -m flows.deploy                                              (on the params nightly.cron schedule)

Accept: the run's dvc.lock, params.yaml and uncached outputs (reports/metrics.json...) are saved under params
history.accepted_dir/<run_id>/, the cached outputs are pushed (`dvc push`) to params nightly.remote (null: the
default remote of .dvc/config), and the run history records accepted=True.
Reject: the history records accepted=False with the gate's diff, the previous accepted run's outputs are put
back into the workspace (its dvc.lock + `dvc checkout`), and the flow run fails with the diff.
A run whose pipeline fails, or whose push fails, is rejected the same way: only a run that passed the gate
and is in the remote counts as accepted.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.accepted import load_accepted, push, restore_accepted, save_accepted
from flows.dvc_cli import tail
from flows.gate import describe_decision, gate_decision
from flows.ingest import describe_ingest, discover_clip_ids, new_clips_per_root, read_known_clips
from flows.pipeline import current_run_id, pipeline_flow, record_history
from lipforge.params import Params, load_params

METRICS = Path("reports/metrics.json")


class NightlyRejected(RuntimeError):
    """The nightly run did not replace the accepted model; the message says why (the gate's diff)."""


def _under(project: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else project / path


@task(name="ingest-report", cache_policy=NO_CACHE)
def ingest_report(project: Path, params: Params) -> dict:
    manifest, rejects = read_known_clips(project)
    report = new_clips_per_root(discover_clip_ids(project, params.manifest.roots), manifest, rejects)
    get_run_logger().info("ingestion (vs the current manifest):\n%s", describe_ingest(report))
    return report


@task(name="last-accepted-run", cache_policy=NO_CACHE)
def last_accepted_run(project: Path, params: Params) -> dict | None:
    """The saved files of the newest run the history records as accepted; None before the first one."""
    from lipforge.history import history_path, last_accepted

    row = last_accepted(history_path(project, params))
    if row is None:
        get_run_logger().info("no accepted run yet: this run is gated against nothing and accepted if it "
                              "reports every gated metric")
        return None
    record = load_accepted(_under(project, params.history.accepted_dir) / row["run_id"])
    get_run_logger().info("gating against accepted run %s", record["run_id"])
    return record


@task(name="gate", cache_policy=NO_CACHE)
def gate(project: Path, params: Params, baseline: dict | None) -> tuple[bool, list[dict], str]:
    new = json.loads((project / METRICS).read_text())
    old = json.loads((Path(baseline["dir"]) / METRICS).read_text()) if baseline else None
    accepted, rows = gate_decision(old, new, params.nightly.gate, params.train_generator.method)
    text = describe_decision(accepted, rows)
    get_run_logger().info("metric gate %s", text)
    return accepted, [dict(vars(r), change=r.change) for r in rows], text


@task(name="accept", cache_policy=NO_CACHE)
def accept(project: Path, params: Params, run_id: str, extra: dict) -> dict:
    """Push the run's cached outputs, then save it as an accepted run; raises if the push fails."""
    logger = get_run_logger()
    pushed = push(project, params.nightly.remote)
    remote = params.nightly.remote or "the default remote"
    if not pushed.ok:
        raise NightlyRejected(f"the gate passed but `dvc push` to {remote} failed, so run {run_id} is not "
                              f"accepted (its outputs would exist only here):\n{tail(pushed.output, 15)}")
    logger.info("pushed run %s to %s: %s", run_id, remote, tail(pushed.output, 3))
    run_dir = _under(project, params.history.accepted_dir) / run_id
    record = save_accepted(project, run_dir, run_id, datetime.now(timezone.utc),
                           dict(extra, remote=params.nightly.remote))
    logger.info("saved accepted run %s in %s (%d files)", run_id, run_dir, len(record["files"]))
    return record


@task(name="restore-previous", cache_policy=NO_CACHE)
def restore_previous(project: Path, params: Params, baseline: dict | None) -> str:
    if baseline is None:
        message = "no accepted run to restore: the workspace keeps this run's outputs"
    else:
        message = restore_accepted(project, baseline, baseline.get("remote") or params.nightly.remote)
    get_run_logger().info(message)
    return message


def reject(project: Path, params: Params, run_id: str, baseline: dict | None, reason: str,
           with_metrics: bool) -> NoReturn:
    """Record the rejection (before restoring, so the row describes the rejected run), restore, fail the run."""
    previous = f"accepted run {baseline['run_id']}" if baseline else "nothing (no accepted run yet)"
    record_history(project, "nightly", False, f"{reason}\nrestoring {previous}", run_id,
                   with_metrics=with_metrics)
    restored = restore_previous(project, params, baseline)
    raise NightlyRejected(f"nightly run {run_id} {reason}\n{restored}")


@flow(name="lipforge-nightly-retrain")
def nightly_retrain_flow(project_dir: str = ".", ray_address: str | None = None) -> dict:
    project = Path(project_dir).resolve()
    params = load_params(project / "params.yaml")
    run_id = current_run_id()
    ingest = ingest_report(project, params)
    baseline = last_accepted_run(project, params)
    try:
        pipeline = pipeline_flow(project_dir=str(project), ray_address=ray_address, kind="nightly", record=False,
                                 run_id=run_id)
    except Exception as err:  # noqa: BLE001 - any failed repro keeps the previous model
        reject(project, params, run_id, baseline, f"rejected: the pipeline failed: {err}", with_metrics=False)
    accepted, rows, text = gate(project, params, baseline)
    if not accepted:
        reject(project, params, run_id, baseline, text, with_metrics=True)
    try:
        accept(project, params, run_id, {"gate": rows, "ingest": ingest,
                                         "baseline": baseline["run_id"] if baseline else None})
    except NightlyRejected as err:
        reject(project, params, run_id, baseline, f"rejected: {err}", with_metrics=True)
    record_history(project, "nightly", True, text, run_id)
    return {"run_id": run_id, "accepted": True, "ingest": ingest, "gate": rows, "stages": pipeline["stages"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.nightly", description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", help="project root (where dvc.yaml and params.yaml are)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster the stages join; default: params.yaml "
                        "ray.address")
    args = parser.parse_args(argv)
    nightly_retrain_flow(project_dir=args.project, ray_address=args.ray_address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
