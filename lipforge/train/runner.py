"""Every training stage runs its loop (a plain function of a config dict) under Ray Train's TorchTrainer.

The run's name is a hash of its config and code, and its checkpoints live in the stage's persisted
output folder: re-running an interrupted stage (`dvc repro`) finds the same name and storage path, and
Ray Train resumes from the latest checkpoint (`ray.train.get_checkpoint()` inside the loop). A changed
config or code gets a new name and starts fresh; stale runs are removed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import torch

from lipforge.hashing import file_sha256, obj_sha256
from lipforge.parallel import ray_session
from lipforge.params import RayParams, TrainerParams
from lipforge.provenance import record_training_workers, worker_record

STATE_FILE = "state.pt"


def code_fingerprint(paths: list[str | Path]) -> str:
    """Hash of the Python sources a run depends on (a changed loss must not resume an old run)."""
    files = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return obj_sha256({str(f): file_sha256(f) for f in files})


def run_key(prefix: str, config: dict, code: list[str | Path]) -> str:
    return f"{prefix}-{obj_sha256({'config': config, 'code': code_fingerprint(code)})[:12]}"


def fit(loop: Callable[[dict], None], config: dict, trainer: TrainerParams, ray_cfg: RayParams,
        storage_dir: str | Path, name: str) -> dict:
    """Run `loop(config)` on `trainer.num_workers` Ray Train workers; returns the final checkpoint's state, and
    records its `training_attempts` (who trained it) for the stage's provenance (`record_training_workers`)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    storage_dir = Path(storage_dir).resolve()
    storage_dir.mkdir(parents=True, exist_ok=True)
    for old in storage_dir.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old)
    resources = {"CPU": trainer.cpus_per_worker}
    if trainer.use_gpu:
        resources["GPU"] = 1
    with ray_session(ray_cfg):
        result = TorchTrainer(
            loop,
            train_loop_config={**config, "_threads": max(1, int(trainer.cpus_per_worker))},
            scaling_config=ScalingConfig(num_workers=trainer.num_workers, use_gpu=trainer.use_gpu,
                                         resources_per_worker=resources),
            run_config=RunConfig(name=name, storage_path=str(storage_dir),
                                 checkpoint_config=CheckpointConfig(num_to_keep=2),
                                 failure_config=FailureConfig(max_failures=trainer.max_failures)),
        ).fit()
        if result.checkpoint is None:
            raise RuntimeError(f"training run {name} finished without a checkpoint; see the log above")
        with result.checkpoint.as_directory() as d:
            state = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
    record_training_workers(name, state.get("training_attempts", []))
    return state


# ---- inside a worker ---------------------------------------------------------------------------------

def setup_worker(config: dict) -> tuple[torch.device, int, int]:
    """Threads, device, rank and world size of this Ray Train worker."""
    import ray.train
    import ray.train.torch

    torch.set_num_threads(config.get("_threads", 1))
    ctx = ray.train.get_context()
    return ray.train.torch.get_device(), ctx.get_world_rank(), ctx.get_world_size()


def gather_worker_records(rank: int, world: int, extra: dict | None = None) -> list[dict]:
    """Every worker's `worker_record` plus its `extra` (e.g. the precision it resolved), by rank (a collective: all
    ranks must call it, after `prepare`, which sets the worker's GPU that NCCL's object gather uses). On a cluster
    the workers that train are other machines than the driver whose stage writes the provenance; this is how it
    learns theirs."""
    mine = {**worker_record(rank), **(extra or {})}
    if world == 1 or not torch.distributed.is_initialized():
        return [mine]
    gathered: list = [None] * world
    torch.distributed.all_gather_object(gathered, mine)
    return sorted(gathered, key=lambda w: w["rank"])


def training_attempts(state: dict | None, start: int, workers: list[dict]) -> list[dict]:
    """Who trained the run, for its checkpoints: the restored checkpoint's attempts plus this one, which starts at
    `start` on `workers` (`gather_worker_records`). A checkpoint written without that list (older code) leaves its
    steps as attempts with no workers known (one, plus one per resume it lists), rather than hiding them."""
    if state is None:
        earlier = []
    elif "training_attempts" in state:
        earlier = state["training_attempts"]
    else:
        earlier = [{"from_step": s, "workers": []} for s in [0, *state.get("resumed_from", [])]]
    return earlier + [{"from_step": start, "workers": workers}]


def worker_values(attempts: list[dict], key: str) -> list:
    """The distinct values of `key` in the worker records of every attempt (`training_attempts`), sorted: one value
    for a run whose workers all agreed, more where a resume landed on other hardware."""
    return sorted({w[key] for a in attempts for w in a["workers"] if key in w})


def resumed_from_steps(attempts: list[dict]) -> list[int]:
    """The step each resume of a run started from (`training_attempts` after the first): [] for a run that was never
    interrupted."""
    return [a["from_step"] for a in attempts[1:]]


def prepare(model: torch.nn.Module) -> torch.nn.Module:
    """Move to this worker's device; wrap in DDP when there is more than one worker."""
    import ray.train.torch

    return ray.train.torch.prepare_model(model, parallel_strategy="ddp")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def restore() -> dict | None:
    """The state saved by the latest checkpoint of this run, if it is being resumed."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)


def report(metrics: dict, state: dict | None, rank: int) -> None:
    """Report metrics; with `state`, rank 0 also saves it as the run's checkpoint (all ranks must call)."""
    import ray.train

    if state is None or rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(state, os.path.join(d, STATE_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def interrupt_requested(step: int) -> bool:
    """Test hook: LIPFORGE_STOP_AFTER_STEP=N makes the loop fail right after checkpointing step N (an interruption)."""
    stop = os.environ.get("LIPFORGE_STOP_AFTER_STEP")
    return stop is not None and step >= int(stop)
