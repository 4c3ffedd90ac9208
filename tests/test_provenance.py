"""Stage provenance: the stage name a process runs as, the record stage_main writes, the Ray cluster record."""
import json
import logging
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lipforge.gitinfo import commit_and_dirty, is_revision, show_file
from lipforge import parallel
from lipforge.parallel import clusters_used, describe_cluster, ray_session
from lipforge.params import RayParams
from lipforge.provenance import (build_record, cpu_description, last_worker_machine, machine_label, read_record,
                                 record_training_workers, stage_name)
from lipforge.stage import StageError, stage_main


@pytest.mark.parametrize("module, argv, expected", [
    ("stages.face_crop", ["/x/stages/face_crop.py"], "face_crop"),
    ("stages.train_expert", ["/x/stages/train_expert.py", "eval"], "train_expert@eval"),
    ("stages.scan_corpus", ["/x/stages/scan_corpus.py", "sample"], "scan_corpus@sample"),
    (None, ["stages/mel.py"], "mel"),
])
def test_stage_name_is_the_module_and_the_foreach_item(module, argv, expected):
    assert stage_name(module, argv) == expected


REPO = Path(__file__).resolve().parents[1]


def test_build_record_keeps_every_fact_it_is_given():
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    cluster = {"address": "local", "nodes": 1, "cpus": 2.0, "gpus": 0.0}
    workers = [{"run": "gen-1", "attempts": [{"from_step": 0, "workers": [{"rank": 0, "host": "n1", "machine": {}}]}]}]
    rec = build_record("mel", "mel", "abc", True, "host1", {"python": "3.11.9", "ray": "2.60.0"}, started, 1.23456,
                       [cluster], None, workers)
    assert rec == {"stage": "mel", "dvc_stage": "mel", "git_commit": "abc", "git_dirty": True, "host": "host1",
                   "machine": None, "versions": {"python": "3.11.9", "ray": "2.60.0"},
                   "started_at": "2026-01-02T03:04:05+00:00", "seconds": 1.235, "ray_clusters": [cluster],
                   "training_workers": workers}
    assert read_record(json.dumps(rec)) == rec
    assert read_record(None) is None and read_record("not json") is None and read_record("[1]") is None


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512vl
bogomips\t: 5192.24

processor\t: 1
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512vl
"""


def test_cpu_description_names_the_model_and_the_kernel_flags_only():
    assert cpu_description(CPUINFO, "x86_64") == {"arch": "x86_64", "model": "AMD EPYC 9B45",
                                                  "kernel_flags": ["avx2", "fma", "avx512f", "avx512_bf16"]}
    # avx512vl and sse2 are listed but do not pick a kernel; no cpuinfo at all (not Linux) names nothing
    assert cpu_description("", "arm64") == {"arch": "arm64", "model": None, "kernel_flags": []}


def test_machine_label_is_one_line_with_the_flags_and_the_gpu():
    cpu = cpu_description(CPUINFO, "x86_64")
    assert machine_label(cpu) == "AMD EPYC 9B45 [avx2 fma avx512f avx512_bf16]"
    assert machine_label({**cpu, "gpu": "NVIDIA H100"}) == "AMD EPYC 9B45 [avx2 fma avx512f avx512_bf16] + NVIDIA H100"
    assert machine_label({"arch": "arm64", "model": None, "kernel_flags": []}) == "arm64 []"


def test_last_worker_machine_is_rank_0_of_the_last_attempt_of_the_last_run():
    m = lambda name: {"model": name}  # noqa: E731
    record = {"training_workers": [
        {"run": "a", "attempts": [{"from_step": 0, "workers": [{"rank": 0, "machine": m("first run")}]}]},
        {"run": "b", "attempts": [{"from_step": 0, "workers": [{"rank": 0, "machine": m("interrupted")}]},
                                  {"from_step": 4, "workers": [{"rank": 1, "machine": m("rank 1")},
                                                               {"rank": 0, "machine": m("resumed")}]}]}]}
    assert last_worker_machine(record) == m("resumed")
    assert last_worker_machine({"machine": m("driver")}) is None and last_worker_machine(None) is None


def test_stage_main_writes_provenance_after_a_successful_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_STAGE", "train_expert@eval")
    (tmp_path / "params.yaml").write_text("seed: 3\n")
    seen = []
    stage_main(lambda p: seen.append(p.seed) or {}, name="train_expert@eval")
    assert seen == [3]
    rec = json.loads((tmp_path / "reports/provenance/train_expert@eval.json").read_text())
    assert rec["stage"] == "train_expert@eval" and rec["dvc_stage"] == "train_expert@eval"
    assert rec["git_commit"] is None and rec["git_dirty"] is None  # not a git repository
    assert set(rec["versions"]) == {"python", "torch", "ray", "dvc"} and rec["versions"]["dvc"]
    assert rec["host"] and rec["seconds"] >= 0 and rec["started_at"].endswith("+00:00")
    assert isinstance(rec["ray_clusters"], list) and isinstance(rec["training_workers"], list)
    assert rec["machine"]["arch"] == platform.machine() and isinstance(rec["machine"]["kernel_flags"], list)


def test_stage_main_names_only_its_own_stages_clusters_and_workers(tmp_path, monkeypatch):
    # one process running two stages (a flow, the tests): the second must not inherit the first's record
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 3\n")
    monkeypatch.setattr(parallel, "_CLUSTERS_USED", [{"address": "ray://earlier:10001"}])
    record_training_workers("earlier-run", [{"from_step": 0, "workers": []}])
    stage_main(lambda p: {}, name="evaluate")
    rec = json.loads((tmp_path / "reports/provenance/evaluate.json").read_text())
    assert rec["ray_clusters"] == [] and rec["training_workers"] == []


def test_stage_main_writes_no_provenance_when_the_stage_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 3\n")

    def fail(params):
        raise StageError("data/manifest/manifest.parquet not found; run the manifest stage first")

    with pytest.raises(SystemExit) as exit_info:
        stage_main(fail, name="face_crop")
    assert exit_info.value.code == 2
    assert "manifest.parquet not found" in capsys.readouterr().err
    assert not (tmp_path / "reports/provenance").exists()


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_facts_ignore_dvc_lock_but_see_other_changes(tmp_path):
    assert commit_and_dirty(tmp_path) == (None, None)
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "one")
    commit, dirty = commit_and_dirty(tmp_path)
    assert len(commit) == 40 and dirty is False
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # dvc repro rewrites it mid-run
    assert commit_and_dirty(tmp_path) == (commit, False)
    (tmp_path / "report@1.json").write_text("{}")  # untracked: not dirty
    assert commit_and_dirty(tmp_path) == (commit, False)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert commit_and_dirty(tmp_path) == (commit, True)
    assert commit_and_dirty(tmp_path, outputs=["a.py"]) == (commit, False)  # a pipeline output it rewrote
    assert is_revision(tmp_path, "HEAD") and not is_revision(tmp_path, "nope")
    assert show_file(tmp_path, "HEAD", "a.py") == "x = 1\n" and show_file(tmp_path, "HEAD", "b.py") is None


def test_describe_cluster_counts_live_nodes_and_names_a_local_ray():
    nodes = [{"Alive": True}, {"Alive": False}, {"Alive": True}]
    rec = describe_cluster(None, "10.0.0.1:6379", "2.60.0", nodes, {"CPU": 16.0, "GPU": 2.0, "memory": 1e9})
    assert rec == {"address": "local", "gcs_address": "10.0.0.1:6379", "ray_version": "2.60.0", "nodes": 2,
                   "cpus": 16.0, "gpus": 2.0}
    assert describe_cluster("ray://head:10001", "h:6379", "2.60.0", [{"Alive": True}], {})["cpus"] == 0.0


def test_ray_session_records_the_cluster_it_used(ray_local):
    import ray

    with ray_session(RayParams()):
        pass
    with ray_session(RayParams()):  # the same cluster twice is recorded once
        pass
    used = clusters_used()
    assert used and used.count(used[-1]) == 1
    assert used[-1]["address"] == "local" and used[-1]["ray_version"] == ray.__version__
    assert used[-1]["nodes"] == 1 and used[-1]["cpus"] == 2.0 and used[-1]["gpus"] == 0.0


def test_ray_session_workers_run_in_the_project_dir_keep_freed_memory_and_silence_the_placement_group_cleaner(
        tmp_path):
    # A fresh process in another directory, because the test session's shared Ray was not started by ray_session.
    code = """
import logging, os, ray
from lipforge.parallel import ray_session
from lipforge.params import RayParams
with ray_session(RayParams(num_cpus=1)):
    name = 'ray.train.v2._internal.execution.controller.placement_group_cleaner'
    def probe():
        from lipforge.cpu_allocator import allocator_status
        arena_max = os.environ.get('MALLOC_ARENA_MAX')
        return f"{logging.getLogger(name).level} {arena_max} {allocator_status()} {os.getcwd()}"
    print(ray.get(ray.remote(probe).remote()))
"""
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    level, arena_max, allocator, cwd = out.stdout.strip().splitlines()[-1].split(" ", 3)
    assert level == str(logging.ERROR) and Path(cwd).resolve() == project.resolve()
    # set in the worker's environment before it started (glibc reads it before any thread takes an arena), and
    # applied by the worker's setup hook (allocator_status only reads what happened)
    assert arena_max == "1" and allocator == "on"
