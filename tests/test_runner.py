"""The Ray Train runner with more than one worker: every worker's machine reaches the checkpoint and the stage's
provenance (on a cluster they are other nodes than the process that writes it)."""
import pytest
import torch

from lipforge.params import RayParams, TrainerParams
from lipforge.provenance import training_workers
from lipforge.train import runner


@pytest.mark.slow
def test_a_two_worker_run_records_each_workers_machine(tmp_path):
    def loop(config):   # defined here so Ray ships it by value to its workers
        device, rank, world = runner.setup_worker(config)
        runner.prepare(torch.nn.Linear(2, 1))   # DDP over gloo: the collectives the gather below uses
        who = runner.attempts(runner.restore(), 0, runner.worker_machines(rank, world))
        runner.report({"step": 1}, {"step": 1, "world": world, "worker_machines": who}, rank)

    trainer = TrainerParams(num_workers=2, cpus_per_worker=1)
    state = runner.fit(loop, {}, trainer, RayParams(num_cpus=2), tmp_path / "runs", "two-workers")
    assert state["world"] == 2
    (attempt,) = state["worker_machines"]
    assert attempt["from_step"] == 0
    assert [w["rank"] for w in attempt["workers"]] == [0, 1]
    for worker in attempt["workers"]:
        assert worker["host"] and worker["machine"]["torch_cpu_capability"]
    assert training_workers()[-1] == {"run": "two-workers", "attempts": state["worker_machines"]}
