"""A throwaway copy of the repository with a tiny pipeline, for tests that run DVC stages end to end.

Shared by test_pipeline_e2e.py (plain `dvc repro`) and test_flows.py (the Prefect flows around it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "n_clips": 6,
    "frame_size": 128,
}


def tiny_training(p: dict) -> None:
    """Minutes, not quality: a few steps of small networks, checkpoints every 2 steps."""
    p["trainer"].update(log_every=1, checkpoint_every=2)
    p["train_expert"].update(steps=4, batch_size=8, eval_every=2, eval_windows=16)
    for spec in p["train_expert"]["experts"].values():
        spec["steps"] = None  # every expert takes train_expert.steps
    p["generator"].update(stabilized_width=4, wav2lip_width=0.125, discriminator_width=4)
    p["perceptual"].update(layers=["relu1_1", "relu2_1"], layer_weights=[0.5, 1.0])
    p["silent_refs"]["optim"].update(steps=2, batch_size=2)
    p["silent_refs"]["refs_per_clip"] = 4
    p["train_generator"]["optim"].update(steps=6, batch_size=2)
    p["silent_refs"]["pixel_only_steps"] = 1       # both phases of the loss schedule run
    p["train_generator"]["pixel_only_steps"] = 3
    p["train_generator"]["ema_decay"] = 0.9        # a weight average that 6 steps move (default 0.99), and its resume
    p["evaluate"].update(n_videos=1, grid_clips=1, grid_frames=2)


def copy_repo(dst: Path) -> None:
    """The repository's files (tracked and untracked, not ignored) without data, reports and dvc.lock, in a
    fresh git repository (no commit), so the copy reproduces from scratch."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if f.startswith(("data/", "reports/")) or f == "dvc.lock":
            continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst / f)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)


def dvc(cwd: Path, *args, expect_ok: bool = True, **env_extra) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1",
               **env_extra)
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if expect_ok:
        assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    else:
        assert proc.returncode != 0, f"dvc {' '.join(args)} should have failed:\n{proc.stdout[-3000:]}"
    return proc.stdout + proc.stderr


def set_params(cwd: Path, update: Callable[[dict], None]) -> None:
    p = cwd / "params.yaml"
    params = yaml.safe_load(p.read_text())
    update(params)
    p.write_text(yaml.safe_dump(params, sort_keys=False))


def add_clip_copy(video: Path, speaker_dir: Path, name: str = "clip1") -> None:
    """A new clip in an LRS2-layout speaker folder: a copy of `video` and its transcript."""
    speaker_dir.mkdir(parents=True)
    shutil.copy2(video, speaker_dir / f"{name}.mp4")
    shutil.copy2(video.with_suffix(".txt"), speaker_dir / f"{name}.txt")


def tree_hashes(root: Path) -> dict[str, str]:
    from lipforge.hashing import file_sha256

    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def make_tiny_project(dst: Path, ray_num_cpus: int | None = 2) -> Path:
    """A repository copy whose params give the 6-clip corpus and tiny training runs.

    `ray_num_cpus` sizes the local Ray each stage starts; None for stages that join an existing cluster
    (Ray refuses num_cpus then)."""
    copy_repo(dst)

    def tiny(p):
        p["sample_corpus"].update(TINY)
        p["ray"]["num_cpus"] = ray_num_cpus
        tiny_training(p)

    set_params(dst, tiny)
    return dst
