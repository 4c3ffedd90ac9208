"""Running `dvc` commands for the flows, and reading what they printed.

DVC runs as a subprocess (the same `dvc` a user types), with the flow's Python first on PATH so stage
commands (`python -m stages...`) use this environment. Parsing of DVC's messages is pure and unit-tested;
the messages it relies on are DVC 3's (dvc/stage/__init__.py, dvc/stage/run.py, dvc/stage/exceptions.py).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# lipforge.stage.stage_main exits with this code on a ParamsError/StageError: an input problem that the
# same command will hit again, so it is never retried.
USER_ERROR_EXIT_CODE = 2


@dataclass(frozen=True)
class DvcResult:
    args: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr together, in that order

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dvc_env(ray_address: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for DVC and the stage commands it starts.

    The Ray cluster is passed as RAY_ADDRESS: stages call `ray.init(address=params.ray.address)` and Ray
    itself uses RAY_ADDRESS when that address is null or "auto", so every stage joins the cluster without
    params.yaml being edited (and without changing any stage's params, so DVC does not see a change)."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    return env


def run_dvc(project: Path, *args: str, env: dict[str, str] | None = None) -> DvcResult:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True,
                          env=env if env is not None else dvc_env(None))
    return DvcResult(tuple(args), proc.returncode, proc.stdout + proc.stderr)


def repro_outcome(stage: str, output: str) -> str:
    """What `dvc repro --single-item <stage>` did: "ran", "skipped" (up to date) or "restored" (DVC's run
    cache had outputs for exactly these deps and params, so it checked them out instead of running)."""
    quoted = re.escape(f"'{stage}'")
    if re.search(rf"Stage {quoted} is cached - skipping run", output):
        return "restored"
    if re.search(rf"Running stage {quoted}", output):
        return "ran"
    if re.search(rf"(Stage )?{quoted} didn't change, skipping", output):
        return "skipped"
    raise ValueError(f"cannot tell from DVC's output whether stage {stage!r} ran; output ends with:\n"
                     f"{tail(output, 10)}")


def stage_exit_code(output: str) -> int | None:
    """Exit code of the stage command from DVC's 'failed to run: <cmd>, exited with N'; None when the
    command did not fail (DVC itself refused: bad dvc.yaml, missing dependency, busy lock...)."""
    found = re.findall(r"failed to run: .*?, exited with (-?\d+)", output)
    return int(found[-1]) if found else None


def is_transient_failure(output: str) -> bool:
    """Whether a failed `dvc repro` is worth retrying.

    Transient: the stage command crashed or was killed (any exit code but 2: an exception, OOM, a lost Ray
    node, a signal), or another DVC process held the repository lock. Not transient: the stage exited with
    2 (lipforge's StageError/ParamsError: bad input or params) or DVC refused before running the command
    (invalid dvc.yaml, a missing dependency): the same command would fail the same way."""
    code = stage_exit_code(output)
    if code is not None:
        return code != USER_ERROR_EXIT_CODE
    return "Unable to acquire lock" in output


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def ray_address_problem(params_address: str | None, params_num_cpus: int | None, ray_address: str | None) -> str | None:
    """Why stages could not join `ray_address` with these params.ray settings, or None when they can.

    RAY_ADDRESS only applies while params.ray.address is null/"auto" (an explicit address wins in ray.init),
    and ray.init refuses num_cpus when joining an existing cluster."""
    if not ray_address:
        return None
    if params_address not in (None, "auto") and params_address != ray_address:
        return (f"params.yaml ray.address is {params_address!r}, which stages use instead of the requested "
                f"cluster {ray_address!r}; set ray.address to null (or to {ray_address!r})")
    if params_address is None and params_num_cpus is not None:
        return (f"params.yaml ray.num_cpus is {params_num_cpus}, which only sizes a local Ray; Ray refuses it "
                f"when joining the cluster at {ray_address!r}: set ray.num_cpus to null")
    return None
