"""Stage train_generator: the lip-sync generator, `method` wav2lip | stabilized, under Ray Train.

Checkpoints every `trainer.checkpoint_every` steps into data/generator/runs; an interrupted run resumes from
the latest one when the stage is re-run. Outputs data/generator/model.pt, reports/train_generator.json and
reports/train_generator_curve.csv (per-step losses, dvc plots).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import StageError, stage_main
from lipforge.train import runner
from lipforge.train.artifacts import latest_metrics, save_model, write_curve, write_json
from lipforge.train.generator_loop import final_weights, silent_ref_paths, train_generator_loop
from lipforge.train.generator_config import CODE, generator_config, perceptual_provenance, precision_report

FACE_DIR = Path("data/face_crop")
MEL_INDEX = Path("data/mel/index.parquet")
EXPERT = Path("data/experts/train/model.pt")
SILENT_INDEX = Path("data/silent_refs/index.parquet")


def run(params: Params, face_dir: Path = FACE_DIR, mel_index: Path = MEL_INDEX, expert_path: Path = EXPERT,
        silent_index: Path = SILENT_INDEX, out_dir: Path | None = None,
        report_path: Path = Path("reports/train_generator.json"),
        curve_path: Path = Path("reports/train_generator_curve.csv")) -> dict:
    cfg = params.train_generator
    out_dir = Path(out_dir or cfg.out_dir)
    config = generator_config(params, cfg, cfg.method, expert_path, face_dir, mel_index, seed_offset=202)
    if cfg.method == "stabilized":
        if not silent_index.exists():
            raise StageError(f"{silent_index} not found; the stabilized generator uses G_S's closed-lip "
                             "references (`dvc repro silent_refs`)")
        config["silent_refs"] = silent_ref_paths(silent_index)
    t0 = time.time()
    state = runner.fit(train_generator_loop, config, params.trainer, params.ray, out_dir / "runs",
                       runner.run_key(f"generator-{cfg.method}", config, CODE))
    wall = time.time() - t0
    perceptual = perceptual_provenance(config)
    sha = save_model(out_dir / "model.pt", "generator", config["build"], final_weights(state),
                     {"role": "G_L", "method": cfg.method, "steps": state["step"], "perceptual": perceptual,
                      "losses": config["losses"], "expert_sha256": config["expert_sha256"]})
    shutil.rmtree(out_dir / "runs", ignore_errors=True)
    last = latest_metrics(state["history"])
    # how the network was built and what it hears (audio input, skip, mel-window offset); the expert is named by sha
    build = {k: v for k, v in config["build"].items() if k != "expert"}
    report = {"method": cfg.method, "build": build, "steps": state["step"], "losses": config["losses"],
              "final": {k: v for k, v in last.items() if k != "step"},
              "train_seconds": round(state["train_seconds"], 1),
              "resumed_from_steps": runner.resumed_from_steps(state["training_attempts"]), "wall_seconds": round(wall, 1),
              "perceptual": perceptual, "expert_sha256": config["expert_sha256"], "model_sha256": sha,
              "precision": precision_report(config, state)}
    write_json(report_path, report)
    write_curve(curve_path, state["history"])
    summary("train_generator", f"{cfg.method}: {state['step']} steps in {report['train_seconds']} s, "
            f"final loss {last.get('total', float('nan')):.4f}")
    return report


if __name__ == "__main__":
    stage_main(run)
