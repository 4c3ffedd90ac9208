"""`dvc repro` of the preprocessing pipeline on a tiny sample corpus, in a copy of the repository.

Checks: every stage runs from a fresh checkout; a second repro is a no-op; adding a corpus root with one
new clip makes the per-clip stages process only that clip; outputs are byte-identical across runs.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = {
    "n_clips": 6,
    "frame_size": 128,
}


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if f.startswith(("data/", "reports/")) or f == "dvc.lock":
            continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst / f)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)


def _dvc(cwd: Path, *args) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _set_params(cwd: Path, update) -> None:
    p = cwd / "params.yaml"
    params = yaml.safe_load(p.read_text())
    update(params)
    p.write_text(yaml.safe_dump(params, sort_keys=False))


def _tree_hashes(root: Path) -> dict[str, str]:
    from lipforge.hashing import file_sha256

    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("project")
    _copy_repo(work)

    def tiny(p):
        p["sample_corpus"].update(TINY)
        p["ray"]["num_cpus"] = 2

    _set_params(work, tiny)
    return work


def test_repro_runs_every_stage_then_is_a_noop(project):
    out = _dvc(project, "repro")
    for stage in ("sample_corpus", "scan_corpus@0", "manifest", "face_crop", "mel", "align"):
        assert f"'{stage}'" in out, f"stage {stage} did not run:\n{out[-2000:]}"
    manifest = pd.read_parquet(project / "data/manifest/manifest.parquet")
    assert len(manifest) == TINY["n_clips"]
    for report in ("manifest", "face_crop", "mel", "align"):
        assert (project / "reports" / f"{report}.json").exists()
    align = json.loads((project / "reports/align.json").read_text())
    assert align["gate"] == "pass" and align["ground_truth"]["mean_ms"] <= 25.0
    again = _dvc(project, "repro")
    assert "Data and pipelines are up to date" in again, again[-2000:]


def test_outputs_are_deterministic(project, tmp_path):
    other = tmp_path / "again"
    other.mkdir()
    _copy_repo(other)
    shutil.copy2(project / "params.yaml", other / "params.yaml")
    _dvc(other, "repro")
    for sub in ("data/sample_corpus", "data/manifest/manifest.parquet", "data/mel", "data/align", "data/face_crop"):
        a, b = project / sub, other / sub
        ha = _tree_hashes(a) if a.is_dir() else {sub: __import__("lipforge.hashing").hashing.file_sha256(a)}
        hb = _tree_hashes(b) if b.is_dir() else {sub: __import__("lipforge.hashing").hashing.file_sha256(b)}
        assert ha == hb, f"{sub} differs between two runs"


def test_adding_a_root_processes_only_new_clips(project):
    manifest = pd.read_parquet(project / "data/manifest/manifest.parquet")
    src = project / manifest.video_path.iloc[0]
    extra = project / "extra_corpus" / "newspk"
    extra.mkdir(parents=True)
    shutil.copy2(src, extra / "clip1.mp4")
    shutil.copy2(src.with_suffix(".txt"), extra / "clip1.txt")

    def add_root(p):
        p["manifest"]["roots"].append({"name": "extra", "path": "extra_corpus", "layout": "lrs2"})

    _set_params(project, add_root)
    _dvc(project, "repro")
    after = pd.read_parquet(project / "data/manifest/manifest.parquet")
    assert len(after) == len(manifest) + 1
    for report in ("face_crop", "mel", "align"):
        r = json.loads((project / "reports" / f"{report}.json").read_text())
        assert r["clips_processed"] == 1, f"{report} processed {r['clips_processed']} clips, expected only the new one"
