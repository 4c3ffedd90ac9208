"""`dvc repro` of the whole pipeline on a tiny sample corpus with tiny training runs, in a copy of the repository.

Checks: every stage runs from a fresh checkout and writes the metrics report; a second repro is a no-op;
an interrupted generator training resumes from its last checkpoint; `dvc exp run -S` of a loss switch
works; adding a corpus root with one new clip makes the per-clip stages process only that clip;
preprocessing outputs are byte-identical across runs.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from lipforge.train.precision import resolve_precision
from tests.pipeline_project import TINY, add_clip_copy, tiny_training
from tests.pipeline_project import copy_repo as _copy_repo
from tests.pipeline_project import dvc as _dvc
from tests.pipeline_project import set_params as _set_params
from tests.pipeline_project import tree_hashes as _tree_hashes

pytestmark = pytest.mark.slow

PREPROCESSING = ("face_crop", "mel", "align")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("project")
    _copy_repo(work)

    def tiny(p):
        p["sample_corpus"].update(TINY)
        p["ray"]["num_cpus"] = 2
        tiny_training(p)

    _set_params(work, tiny)
    return work


def test_repro_runs_every_stage_then_is_a_noop(project):
    out = _dvc(project, "repro")
    for stage in ("sample_corpus", "scan_corpus@0", "manifest", "face_crop", "mel", "align", "train_expert@train",
                  "train_expert@eval", "silent_refs", "train_generator", "evaluate"):
        assert f"'{stage}'" in out, f"stage {stage} did not run:\n{out[-2000:]}"
    manifest = pd.read_parquet(project / "data/manifest/manifest.parquet")
    assert len(manifest) == TINY["n_clips"]
    for report in ("manifest", "face_crop", "mel", "align"):
        assert (project / "reports" / f"{report}.json").exists()
    align = json.loads((project / "reports/align.json").read_text())
    assert align["gate"] == "pass" and align["ground_truth"]["mean_ms"] <= 25.0
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert set(metrics["rows"]) == {"ground_truth", "copy_reference", "stabilized"}
    for row in metrics["rows"].values():
        for key in ("ssim", "lse_d", "lse_c", "m_lmd", "f_lmd", "ifc", "mouth_opening_corr_pooled"):
            assert key in row, key
    assert metrics["rows"]["ground_truth"]["ssim"] == 1.0 and metrics["rows"]["ground_truth"]["m_lmd"] == 0.0
    assert metrics["backends"]["lse_judge"]["sha256"] and metrics["backends"]["landmarks"]["backend"] == "dlib"
    clips = pd.read_parquet(project / "reports/eval_clips.parquet")
    assert set(clips["row"]) == set(metrics["rows"]) and len(clips) == 3 * metrics["clips"]
    assert (project / "reports/eval_grid.png").stat().st_size > 0
    video = next((project / "reports/videos").glob("*.mp4"))
    from lipforge.media import probe

    assert probe(video).has_audio
    for name in ("expert_train", "expert_eval", "silent_refs", "train_generator"):
        assert (project / "reports" / f"{name}.json").exists()
        assert (project / "reports" / f"{name}_curve.csv").read_text().count("\n") >= 2
    silent_errors = json.loads((project / "reports/silent_refs.json").read_text())["reference_abs_error"]
    assert "train" in silent_errors and set(silent_errors) <= {"train", "val", "test"}
    again = _dvc(project, "repro")
    assert "Data and pipelines are up to date" in again, again[-2000:]


def test_interrupted_generator_training_resumes_from_its_last_checkpoint(project):
    _dvc(project, "repro", "-f", "-s", "train_generator", expect_ok=False, LIPFORGE_STOP_AFTER_STEP="4")
    checkpoints = list((project / "data/generator/runs").glob("*/checkpoint_*"))
    assert checkpoints, "no checkpoint left by the interrupted run"
    out = _dvc(project, "repro")
    # evaluate may be skipped: resuming replays the same batches, so the model can come out bit-identical.
    assert "Running stage 'train_generator'" in out
    report = json.loads((project / "reports/train_generator.json").read_text())
    assert report["resumed_from_steps"] == [4] and report["steps"] == 6
    # G_L's default precision `auto`, as both attempts' worker on this CPU resolved it
    assert report["precision"] == {"setting": "auto", "ran_in": [resolve_precision("auto", torch.device("cpu"))]}
    assert not (project / "data/generator/runs").exists()
    # provenance names the workers of each attempt: the interrupted one from step 0 and the resume from step 4
    record = json.loads((project / "reports/provenance/train_generator.json").read_text())
    (run,) = record["training_workers"]
    assert [a["from_step"] for a in run["attempts"]] == [0, 4]
    for attempt in run["attempts"]:
        (worker,) = attempt["workers"]
        assert worker["rank"] == 0 and worker["machine"]["torch_cpu_capability"]


def test_dvc_exp_run_switches_one_loss_term(project):
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"], cwd=project,
                   check=True)
    out = _dvc(project, "exp", "run", "-S", "train_generator.losses.triplet=false")
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'train_generator':", "Running stage 'evaluate':"], ran
    report = json.loads((project / "reports/train_generator.json").read_text())
    assert report["losses"]["triplet"] is False
    assert "triplet" not in report["final"]


def test_outputs_are_deterministic(project, tmp_path):
    other = tmp_path / "again"
    other.mkdir()
    _copy_repo(other)
    shutil.copy2(project / "params.yaml", other / "params.yaml")
    _dvc(other, "repro", *PREPROCESSING)
    for sub in ("data/sample_corpus", "data/manifest/manifest.parquet", "data/mel", "data/align", "data/face_crop"):
        a, b = project / sub, other / sub
        ha = _tree_hashes(a) if a.is_dir() else {sub: __import__("lipforge.hashing").hashing.file_sha256(a)}
        hb = _tree_hashes(b) if b.is_dir() else {sub: __import__("lipforge.hashing").hashing.file_sha256(b)}
        assert ha == hb, f"{sub} differs between two runs"


def test_adding_a_root_processes_only_new_clips(project):
    manifest = pd.read_parquet(project / "data/manifest/manifest.parquet")
    add_clip_copy(project / manifest.video_path.iloc[0], project / "extra_corpus" / "newspk")

    def add_root(p):
        p["manifest"]["roots"].append({"name": "extra", "path": "extra_corpus", "layout": "lrs2"})

    _set_params(project, add_root)
    _dvc(project, "repro", *PREPROCESSING)
    after = pd.read_parquet(project / "data/manifest/manifest.parquet")
    assert len(after) == len(manifest) + 1
    for report in ("face_crop", "mel", "align"):
        r = json.loads((project / "reports" / f"{report}.json").read_text())
        assert r["clips_processed"] == 1, f"{report} processed {r['clips_processed']} clips, expected only the new one"
