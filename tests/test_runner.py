"""The Ray Train runner with more than one worker: every worker's machine reaches the checkpoint and the stage's
provenance (on a cluster they are other nodes than the process that writes it)."""
import pytest
import torch

from lipforge.params import RayParams, TrainerParams
from lipforge.provenance import training_workers
from lipforge.train import runner


def test_training_attempts_keep_every_resume_and_account_for_steps_of_older_checkpoints():
    first = [{"rank": 0, "host": "n1", "machine": {}}]
    again = [{"rank": 0, "host": "n2", "machine": {}}]
    fresh = runner.training_attempts(None, 0, first)
    assert fresh == [{"from_step": 0, "workers": first}]
    resumed = runner.training_attempts({"step": 4, "training_attempts": fresh}, 4, again)
    assert resumed == [{"from_step": 0, "workers": first}, {"from_step": 4, "workers": again}]
    twice = runner.training_attempts({"step": 9, "training_attempts": resumed}, 9, first)
    assert [a["from_step"] for a in twice] == [0, 4, 9]
    assert runner.resumed_from_steps(fresh) == [] and runner.resumed_from_steps(twice) == [4, 9]
    # a checkpoint from before attempts were kept: its steps stay visible, with no workers known
    assert runner.training_attempts({"step": 4}, 4, again) == [{"from_step": 0, "workers": []},
                                                                {"from_step": 4, "workers": again}]
    older = runner.training_attempts({"step": 9, "resumed_from": [4]}, 9, again)
    assert older == [{"from_step": 0, "workers": []}, {"from_step": 4, "workers": []}, {"from_step": 9, "workers": again}]
    assert runner.resumed_from_steps(older) == [4, 9]


def test_worker_values_lists_what_the_workers_of_every_attempt_recorded_once():
    attempts = [{"from_step": 0, "workers": [{"rank": 0, "precision": "bf16"}, {"rank": 1, "precision": "bf16"}]},
                {"from_step": 4, "workers": []},   # an older checkpoint's attempt: no workers known
                {"from_step": 9, "workers": [{"rank": 0, "precision": "fp32"}, {"rank": 1}]}]
    assert runner.worker_values(attempts, "precision") == ["bf16", "fp32"]
    assert runner.worker_values(attempts[:1], "precision") == ["bf16"]
    assert runner.worker_values(attempts, "absent") == []


def test_a_generator_stage_reports_its_precision_setting_and_what_its_workers_ran():
    from lipforge.train.generator_config import precision_report

    state = {"training_attempts": [{"from_step": 0, "workers": [{"rank": 0, "precision": "bf16"}]},
                                   {"from_step": 100, "workers": [{"rank": 0, "precision": "fp32"}]}]}
    assert precision_report({"precision": "auto"}, state) == {"setting": "auto", "ran_in": ["bf16", "fp32"]}


@pytest.mark.slow
def test_a_two_worker_run_records_each_workers_machine(tmp_path):
    def loop(config):   # defined here so Ray ships it by value to its workers
        device, rank, world = runner.setup_worker(config)
        runner.prepare(torch.nn.Linear(2, 1))   # DDP over gloo: the collectives the gather below uses
        workers = runner.gather_worker_records(rank, world, {"precision": f"rank-{rank}"})
        attempts = runner.training_attempts(runner.restore(), 0, workers)
        runner.report({"step": 1}, {"step": 1, "world": world, "training_attempts": attempts}, rank)

    trainer = TrainerParams(num_workers=2, cpus_per_worker=1)
    state = runner.fit(loop, {}, trainer, RayParams(num_cpus=2), tmp_path / "runs", "two-workers")
    assert state["world"] == 2
    (attempt,) = state["training_attempts"]
    assert attempt["from_step"] == 0
    assert [w["rank"] for w in attempt["workers"]] == [0, 1]
    for worker in attempt["workers"]:
        assert worker["host"] and worker["machine"]["torch_cpu_capability"]
        assert worker["precision"] == f"rank-{worker['rank']}"   # each worker's own extra, not rank 0's
    assert training_workers()[-1] == {"run": "two-workers", "attempts": state["training_attempts"]}
