"""Register the nightly retrain as a Prefect deployment on the params nightly.cron schedule, and serve it.

    python -m flows.deploy [--project DIR] [--ray-address ADDR]     register + serve (runs the scheduled flows;
                                                                    keep it running, e.g. under systemd)
    python -m flows.deploy --register-only                          register/update the schedule and exit

The deployment goes to the Prefect API in PREFECT_API_URL: a local `prefect server start` or a remote server
(Prefect Cloud included). Schedules need a real server; an ephemeral one cannot schedule. `serve` needs no work
pool: this process polls the server and runs each scheduled nightly run itself, in this Python environment.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lipforge.params import NightlyParams, load_params


def schedule_of(nightly: NightlyParams):
    """The Prefect cron schedule of params nightly.cron / nightly.timezone; a bad value names its params key."""
    from prefect.schedules import Cron

    try:
        ZoneInfo(nightly.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"params.yaml nightly.timezone: {nightly.timezone!r} is not an IANA time zone "
                         "(e.g. UTC, Europe/Berlin, America/New_York)") from None
    try:
        return Cron(nightly.cron, timezone=nightly.timezone)
    except ValueError as err:
        raise ValueError(f"params.yaml nightly.cron: {nightly.cron!r} is not a valid cron expression "
                         f"(minute hour day month weekday, e.g. '0 2 * * *'): {err}") from None


def build_deployment(project: Path, ray_address: str | None = None):
    """The nightly deployment of `project`: name, schedule and parameters from its params.yaml."""
    from flows.nightly import nightly_retrain_flow

    project = project.resolve()
    nightly = load_params(project / "params.yaml").nightly
    return nightly_retrain_flow.to_deployment(
        name=nightly.deployment,
        schedule=schedule_of(nightly),
        parameters={"project_dir": str(project), "ray_address": ray_address},
        # One nightly run at a time: two in one workspace would contend for DVC's lock and for the restore.
        concurrency_limit=1,
        description=f"lipforge nightly retrain of {project}: ingest, dvc repro, metric gate, accept or restore",
        tags=["lipforge", "nightly"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", help="project root (where dvc.yaml and params.yaml are)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster the nightly stages join; default: "
                        "params.yaml ray.address")
    parser.add_argument("--register-only", action="store_true", help="create/update the deployment and its "
                        "schedule, then exit (runs start once `python -m flows.deploy` serves it)")
    args = parser.parse_args(argv)
    deployment = build_deployment(Path(args.project), args.ray_address)
    if args.register_only:
        deployment_id = deployment.apply()
        print(f"registered deployment {deployment.flow_name}/{deployment.name} ({deployment_id})")
        return 0
    from prefect import serve

    serve(deployment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
