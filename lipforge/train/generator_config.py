"""The training-loop config of a generator run, shared by G_S (silent_refs stage) and G_L (train_generator stage),
and the provenance of the perceptual network it will use."""
from __future__ import annotations

from pathlib import Path

from lipforge.params import Params
from lipforge.stage import StageError
from lipforge.train import runner
from lipforge.train.artifacts import load_model_file
from lipforge.train.generator_loop import generator_build
from lipforge.weights import locate

# Code whose change invalidates a run's checkpoints (part of the run key, see runner.run_key).
CODE = ["models", "lipforge/train", "lipforge/losses.py"]


def generator_config(params: Params, section, method: str, expert_path: Path, face_dir: Path, mel_index: Path,
                     seed_offset: int) -> dict:
    """The loop config shared by G_S (method 'silent') and G_L (silent_refs and train_generator stages)."""
    expert = load_model_file(expert_path, "expert") if expert_path.exists() else None
    if method != "wav2lip" and expert is None:
        raise StageError(f"{expert_path} not found; the {method} generator needs the trained expert "
                         "(`dvc repro train_expert@train`)")
    arch = params.generator.model_dump()
    expert_build = expert["build"] if expert else None
    if method == "silent":
        # G_S keeps the paper's architecture: audio at the bottleneck only, the expert's embedding, each frame
        # hearing the window that starts at it
        build = generator_build("stabilized", arch, params.face_crop.img_size, expert_build, audio_offset=0)
    else:
        # G_L may add lipforge's audio skip and the expert's features; both methods take the mel-window offset
        g_l_only = ({"audio_skip": section.audio_skip_channels, "audio_skip_rows": section.audio_skip_rows,
                     "audio_input": section.audio_input} if method == "stabilized" else {})
        build = generator_build(method, arch, params.face_crop.img_size, expert_build, section.audio_offset,
                                **g_l_only)
    vgg = locate("vgg19-dcbb9e9d.pth")
    return {"method": method, "build": build, "arch": arch, "seed": params.seed + seed_offset,
            "expert_path": str(expert_path.resolve()), "expert_sha256": expert["sha256"] if expert else None,
            "face_dir": str(face_dir.resolve()), "mel_index": str(mel_index.resolve()),
            "optim": section.optim.model_dump(), "losses": section.losses.model_dump(),
            "pixel_only_steps": section.pixel_only_steps, "pixel_only_lr": section.pixel_only_lr,
            "ema_decay": section.ema_decay, "mouth_region": section.mouth_region,
            "augment": section.augment.model_dump(),
            # a setting (auto | fp32 | bf16); each training worker resolves it (generator_loop.on_device)
            "precision": section.wav2lip_precision if method == "wav2lip" else section.precision,
            "weights": section.weights.model_dump(),
            "wav2lip_weights": None if method == "silent" else section.wav2lip_weights.model_dump(),
            "perceptual": params.perceptual.model_dump(), "vgg_path": str(vgg) if vgg else None,
            "log_every": params.trainer.log_every, "checkpoint_every": params.trainer.checkpoint_every}


def perceptual_provenance(config: dict) -> dict | None:
    from models.vgg import load_vgg19

    if config["method"] == "wav2lip" or not (config["losses"]["perceptual"] or config["losses"].get("triplet")):
        return None
    return load_vgg19(config["perceptual"]["layers"], config["vgg_path"], config["seed"])[1]


def precision_report(config: dict, state: dict) -> dict:
    """A generator run's `precision` entry for its stage report: what the param said (`auto` | `fp32` | `bf16`) and
    what the training workers ran in (`auto` resolves per device)."""
    return {"setting": config["precision"], "ran_in": runner.worker_values(state["training_attempts"], "precision")}
