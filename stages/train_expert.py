"""Stage train_expert@<name>: a lip-sync expert (syncnet | avsyncnet) on 5-frame lower-half windows + 16 mel frames.

`train` guides the generators, `eval` (another seed, default another architecture) only scores them.
Outputs data/experts/<name>/model.pt, reports/expert_<name>.json (held-out accuracy and ROC AUC, dvc metrics) and
reports/expert_<name>_curve.csv (dvc plots). Runs under Ray Train; an interrupted run resumes.
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import StageError, stage_main
from lipforge.train import runner
from lipforge.train.artifacts import latest_metrics, save_model, write_curve, write_json
from lipforge.train.expert_loop import expert_from_checkpoint, mouth_heads_from_checkpoint, train_expert_loop

FACE_DIR = Path("data/face_crop")
MEL_INDEX = Path("data/mel/index.parquet")
CODE = ["models", "lipforge/train", "lipforge/losses.py"]


def arch_kwargs(params: Params, arch: str) -> dict:
    """The expert's constructor arguments: its section of train_expert (`syncnet` or `avsyncnet`), every field, so a
    new field reaches the model without an edit here (lists as tuples, which the model file keeps as written)."""
    section = getattr(params.train_expert, arch).model_dump()
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def run(params: Params, name: str, face_dir: Path = FACE_DIR, mel_index: Path = MEL_INDEX,
        reports_dir: Path = Path("reports")) -> dict:
    cfg = params.train_expert
    if name not in cfg.experts:
        raise StageError(f"params.yaml: train_expert.experts has no {name!r} (has {', '.join(cfg.experts)})")
    spec = cfg.experts[name]
    config = {"arch": spec.arch, "arch_kwargs": arch_kwargs(params, spec.arch), "seed": spec.seed,
              "face_dir": str(face_dir.resolve()), "mel_index": str(mel_index.resolve()),
              **cfg.model_dump(include={"steps", "batch_size", "lr", "lr_schedule", "negative_other_clip_fraction",
                                        "min_negative_shift", "negative_silence_level", "eval_every",
                                        "eval_windows", "augment", "mouth_shape_weight", "ema_decay",
                                        "multiway_weight", "multiway_candidates", "multiway_temperature"}),
              **({"steps": spec.steps} if spec.steps is not None else {}),
              "log_every": params.trainer.log_every, "checkpoint_every": params.trainer.checkpoint_every}
    out_dir = Path(cfg.out_dir) / name
    runs = out_dir / "runs"
    t0 = time.time()
    state = runner.fit(train_expert_loop, config, params.trainer, params.ray, runs,
                       runner.run_key(f"expert-{name}", config, CODE))
    history = state["history"]
    last = latest_metrics(history)
    sha = save_model(out_dir / "model.pt", "expert", {"arch": spec.arch, "kwargs": config["arch_kwargs"]},
                     expert_from_checkpoint(config, state).state_dict(),
                     {"name": name, "seed": spec.seed, "steps": state["step"]},
                     mouth_heads=mouth_heads_from_checkpoint(config, state))
    shutil.rmtree(runs, ignore_errors=True)  # checkpoints only serve resuming an interrupted run
    report = {
        "expert": name, "arch": spec.arch, "seed": spec.seed, "steps": state["step"],
        "test_accuracy": last.get("test_accuracy"), "val_accuracy": last.get("val_accuracy"),
        "test_auc": last.get("test_auc"), "val_auc": last.get("val_auc"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "train_samples_per_s": last.get("samples_per_s"), "wall_seconds": round(time.time() - t0, 1),
        "model_sha256": sha, "resumed_from_steps": runner.resumed_from_steps(state["training_attempts"]),
        "gate": {"min_test_accuracy": cfg.min_test_accuracy,
                 "passed": last.get("test_accuracy") is not None and last["test_accuracy"] >= cfg.min_test_accuracy},
    }
    write_json(reports_dir / f"expert_{name}.json", report)
    write_curve(reports_dir / f"expert_{name}_curve.csv", history)
    acc = report["test_accuracy"]
    summary(f"train_expert@{name}", f"{spec.arch} seed {spec.seed}: {state['step']} steps, held-out test accuracy "
            f"{acc if acc is None else f'{acc:.3f}'} ({'pass' if report['gate']['passed'] else 'FAIL'} "
            f">= {cfg.min_test_accuracy}), {report['wall_seconds']} s")
    return report


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stages.train_expert <name>   (a key of train_expert.experts in params.yaml)")
    stage_main(lambda p: run(p, sys.argv[1]))
