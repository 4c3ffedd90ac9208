"""Generator training (one Ray Train worker's loop) for the three generators of the pipeline:

- `wav2lip`: Wav2Lip's recipe, L = (1 - s - g) L1 + s E_sync + g L_GAN (Prajwal et al. 2020, sec. 3.3).
- `stabilized`: G_L of the Stabilized-Sync paper, eq. 5: L = L_GAN + 10 L_pixel + 1 L_per + 2 L_ss + 0.5 L_at,
  with silent (closed-lip) identity references from G_S and the frozen expert audio encoder.
- `silent`: G_S, the same network and losses with lambda3 = lambda4 = 0 (no sync, no triplet), trained on
  raw identity references.
Every term is switched by config["losses"]; a switched-off term is not computed. For the first
config["pixel_only_steps"] steps only the pixel loss trains, at config["pixel_only_lr"] (lipforge's schedule for
CPU budgets, see `losses_at_step`); then every switched-on term, and the discriminator, at config["optim"]["lr"].
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.optim.swa_utils import AveragedModel

from lipforge import losses as L
from lipforge.train import runner
from lipforge.train.augment import WindowAugment, augment_generator_windows
from lipforge.train.data import WINDOW, SilentRefs, generator_batch, load_clips, mask_lower_half
from lipforge.train.lr_schedule import generator_lr, set_lr
from lipforge.train.precision import forward_in, resolve_precision
from lipforge.train.weight_average import (average_state, delivered_weights, restore_average, update_average,
                                           weight_average)
from models.experts import build_expert, lower_half
from models.stabilized import StabilizedDiscriminator, StabilizedGenerator
from models.vgg import load_vgg19
from models.wav2lip import Wav2LipDiscriminator, Wav2LipGenerator


def build_generator(build: dict, expert: torch.nn.Module | None = None) -> torch.nn.Module:
    """A generator from the `build` record of its model file (see `generator_build`).

    The stabilized generator's frozen audio encoder is `expert`'s (training: the trained expert's weights);
    without one, an untrained expert of the recorded architecture is built, whose weights the generator's
    state dict then fills in."""
    if build["method"] == "wav2lip":
        return Wav2LipGenerator(**build["kwargs"])
    expert = expert or build_expert(build["expert"]["arch"], **build["expert"]["kwargs"])
    return StabilizedGenerator(audio_encoder=expert.audio_encoder, audio_dim=expert.embed_dim, **build["kwargs"])


def generator_build(method: str, arch: dict, img_size: int, expert_build: dict, audio_offset: int = 0,
                    **stabilized_kwargs) -> dict:
    """The record a generator model file carries to rebuild and run its network. `audio_offset`: where each
    frame's mel window starts, relative to the frame (`Clip.frame_mels`); training and evaluation both read it
    from here. `stabilized_kwargs`: further StabilizedGenerator arguments (G_L's audio skip and audio input); left
    out, the model's own defaults hold."""
    if method == "wav2lip":
        return {"method": method, "audio_offset": audio_offset,
                "kwargs": {"width": arch["wav2lip_width"], "img_size": img_size}}
    return {"method": method, "expert": expert_build, "audio_offset": audio_offset,
            "kwargs": {"width": arch["stabilized_width"], "n_blocks": arch["stabilized_blocks"], "img_size": img_size,
                       **stabilized_kwargs}}


def audio_offset(build: dict) -> int:
    """A generator's mel-window offset (model files written before the record had one used 0)."""
    return build.get("audio_offset", 0)


@dataclass(frozen=True)
class LoadedGenerator:
    """A trained generator ready to run, with the build record that says how it hears its audio."""
    net: torch.nn.Module
    build: dict

    @property
    def method(self) -> str:
        return self.build["method"]

    @property
    def audio_offset(self) -> int:
        return audio_offset(self.build)


def load_generator(path: str | Path) -> LoadedGenerator:
    """The generator of a train_generator model file, in eval mode on the CPU."""
    from lipforge.train.artifacts import load_model_file

    blob = load_model_file(path, "generator")
    net = build_generator(blob["build"])
    net.load_state_dict(blob["state_dict"])
    return LoadedGenerator(net.eval(), blob["build"])


def build_discriminator(method: str, arch: dict) -> torch.nn.Module:
    if method == "wav2lip":
        return Wav2LipDiscriminator(width=arch["wav2lip_width"])
    return StabilizedDiscriminator(width=arch["discriminator_width"])


def silent_ref_paths(index_path: str | Path) -> dict[str, dict]:
    """clip id -> {path: absolute path of its closed-lip references, frame_indices: the clip frame of each},
    read from the silent_refs stage's index (absolute: Ray Train may run the loop in another directory)."""
    return {r.clip_id: {"path": str(Path(r.refs_path).resolve()), "frame_indices": json.loads(r.frame_indices)}
            for r in pd.read_parquet(index_path).itertuples()}


def load_silent_refs(index: dict[str, dict] | None) -> dict[str, SilentRefs] | None:
    """clip id -> its memory-mapped (K, H, W, 3) closed-lip references written by the silent_refs stage."""
    if index is None:
        return None
    return {cid: SilentRefs(np.load(ref["path"], mmap_mode="r"), np.asarray(ref["frame_indices"]))
            for cid, ref in index.items()}


def triplet_features(feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """VGG features scaled by 1/sqrt(size) per layer, so eq. 2's distances are RMS-like and on the scale of
    alpha = 1 (raw L2 over ~10^5 random-VGG activations is ~10^3 and swamps every other term). The paper
    does not say how it normalises D; this choice is ours."""
    return [f / f[0].numel() ** 0.5 for f in feats]


def perceptual_frames(x: torch.Tensor, which: str) -> torch.Tensor:
    """(B, T, 3, H, W) -> (N, 3, H, W): every frame, or only each window's middle frame."""
    if which == "middle":
        return x[:, WINDOW // 2]
    return x.flatten(0, 1)


def constant_vgg_features(precision: str, vgg, gt: torch.Tensor, ref: torch.Tensor | None):
    """VGG features of the target frames and, when given, the reference frames, in one forward pass: VGG is frozen
    and per image, so this is two passes' arithmetic (bit for bit on the CPUs measured), and a batch twice the size
    runs faster (docs/experiments.md "G_L in bfloat16"). -> (target features, reference features or None)."""
    if ref is None:
        return forward_in(precision, vgg, gt), None
    both = forward_in(precision, vgg, torch.cat([gt, ref]))
    n = len(gt)
    return [f[:n] for f in both], [f[n:] for f in both]


def losses_at_step(losses: dict[str, bool], pixel_only_steps: int, step: int) -> dict[str, bool]:
    """The loss switches in force at (0-based) `step`: the pixel terms alone (pixel L1, and mouth_pixel when switched
    on) before `pixel_only_steps`, else `losses`.

    Why: from scratch, the GAN and sync terms slow the generator's reconstruction more than they help in a budget
    of hundreds of steps (measured on the sample corpus: with every term from the start, G_L's mouths follow the
    identity reference and ignore the audio after 450 steps; with L1 alone they follow the audio). Wav2Lip, likewise,
    switches its sync loss on only once the generator reconstructs. The paper trains with every term from the
    start (pixel_only_steps 0)."""
    if step >= pixel_only_steps:
        return losses
    return {name: name == "pixel" or (name == "mouth_pixel" and on) for name, on in losses.items()}


def generator_losses(cfg: dict, fake, batch, expert, vgg, disc, on: dict[str, bool] | None = None,
                     mouth_reader=None) -> dict[str, torch.Tensor]:
    """The generator's loss terms (unweighted) for one batch; only the terms switched on in `on` (default
    cfg["losses"]) are computed. `mouth_reader`: the expert's (models.experts.MouthReader), for `mouth_shape`."""
    on, out = cfg["losses"] if on is None else on, {}
    gt, ref = batch["gt"], batch["ref"]
    if on["pixel"]:
        out["pixel"] = L.pixel_l1_loss(fake, gt)
    if on["mouth_pixel"] and cfg["method"] != "wav2lip":
        out["mouth_pixel"] = L.mouth_region_l1_loss(fake, gt, tuple(cfg["mouth_region"]))
    if on["sync"] and cfg["method"] != "silent":
        audio = expert.encode_audio(batch["sync_mel"])
        x = L.cosine_similarity(audio, expert.encode_face(lower_half(fake)))
        out["sync_sim"] = x.mean().detach()
        if cfg["method"] == "wav2lip":
            out["sync"] = L.sync_bce_loss(x, torch.ones_like(x))
        else:
            with torch.no_grad():
                y = L.cosine_similarity(audio, expert.encode_face(lower_half(gt)))
                d = L.cosine_similarity(audio, expert.encode_face(lower_half(ref)))
            out["sync"] = L.stabilized_sync_loss(x, y, d)
            out["gt_sync_sim"] = y.mean()
    if on.get("mouth_shape") and cfg["method"] == "stabilized":
        with torch.no_grad():
            real_shape = mouth_reader(lower_half(gt))
        out["mouth_shape"] = L.mouth_shape_match_loss(mouth_reader(lower_half(fake)), real_shape)
    want_per = on["perceptual"] and cfg["method"] != "wav2lip"
    want_at = on["triplet"] and cfg["method"] == "stabilized"
    if want_per or want_at:
        which, precision = cfg["perceptual"]["frames"], cfg["precision"]
        f_fake = forward_in(precision, vgg, perceptual_frames(fake, which))
        with torch.no_grad():
            f_gt, f_ref = constant_vgg_features(precision, vgg, perceptual_frames(gt, which),
                                                perceptual_frames(ref, which) if want_at else None)
        if want_per:
            out["perceptual"] = L.perceptual_loss(f_fake, f_gt, cfg["perceptual"]["layer_weights"])
        if want_at:
            out["triplet"] = L.adaptive_triplet_loss(triplet_features(f_fake), triplet_features(f_gt),
                                                     triplet_features(f_ref), alpha=cfg["weights"]["triplet_alpha"])
    if on["gan"]:
        out["gan"] = L.gan_generator_loss(disc(fake.flatten(0, 1)))
    return out


def total_loss(cfg: dict, terms: dict[str, torch.Tensor]) -> torch.Tensor:
    if cfg["method"] == "wav2lip":
        s = cfg["wav2lip_weights"]["sync"] if "sync" in terms else 0.0
        g = cfg["wav2lip_weights"]["gan"] if "gan" in terms else 0.0
        total = (1 - s - g) * terms.get("pixel", 0.0)
        return total + s * terms.get("sync", 0.0) + g * terms.get("gan", 0.0)
    w = cfg["weights"]
    return sum(w[name] * terms[name] for name in ("gan", "pixel", "perceptual", "sync", "triplet", "mouth_pixel",
                                              "mouth_shape")
               if name in terms)


def generator_step(cfg: dict, step: int, batch: dict, gen, disc, opt_g, opt_d, expert, vgg, mouth_reader=None):
    """One training step at (0-based) `step`: the loss terms and lr in force then (`losses_at_step`, `generator_lr`),
    a discriminator update when the GAN term is on, then the generator update.
    Returns (unweighted terms, total generator loss, discriminator loss or None)."""
    on = losses_at_step(cfg["losses"], cfg["pixel_only_steps"], step)
    set_lr((opt_g, opt_d), generator_lr(cfg["optim"]["lr"], cfg["pixel_only_lr"], cfg["pixel_only_steps"], step))
    # the generator and VGG carry most of a step's arithmetic; `precision` bf16 runs them in bfloat16
    # (lipforge/train/precision.py), every loss in float32
    fake = forward_in(cfg["precision"], gen, batch["mels"], batch["pose"], batch["ref"])
    d_loss = None
    if on["gan"]:
        d_loss = L.gan_discriminator_loss(disc(batch["gt"].flatten(0, 1)), disc(fake.detach().flatten(0, 1)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    terms = generator_losses(cfg, fake, batch, expert, vgg, disc, on, mouth_reader)
    loss = total_loss(cfg, terms)
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    return terms, loss, d_loss


def final_weights(state: dict) -> dict:
    """The generator weights a run delivers: the moving average when the run kept one, else the last step's."""
    return delivered_weights(state, "generator")


def to_device(batch: dict, device, augment: WindowAugment | None = None,
              rng: np.random.Generator | None = None) -> dict:
    """A `generator_batch` as tensors on `device`, its windows augmented (`augment`, drawing from `rng`) when
    given, and the pose reference made from the (augmented) targets."""
    out = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
    if augment is not None:
        out["gt"], out["ref"] = augment_generator_windows(out["gt"], out["ref"], rng, augment)
    out["pose"] = mask_lower_half(out["gt"])
    return out


@dataclass
class TrainingParts:
    """What a generator run trains with: the networks, their optimisers and the weight average."""
    expert: torch.nn.Module | None
    gen: torch.nn.Module
    disc: torch.nn.Module
    vgg: torch.nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: AveragedModel | None   # None: ema_decay off
    mouth_reader: torch.nn.Module | None = None   # the expert's, when the mouth_shape term is on


def training_parts(config: dict, device) -> TrainingParts:
    """The networks and optimisers of a run of `config` (a `generator_config` record), freshly initialised from
    `config["seed"]`. The expert is loaded only when a term uses it, VGG-19 only when a VGG term is on."""
    torch.manual_seed(config["seed"])
    method = config["method"]
    expert = None
    if method != "wav2lip" or config["losses"]["sync"]:
        from lipforge.train.artifacts import load_expert

        expert = load_expert(config["expert_path"])[0].to(device)
    # the stabilized generator's frozen audio encoder is the trained expert's, not a fresh copy
    gen = build_generator(config["build"], None if method == "wav2lip" else expert).to(device)
    disc = build_discriminator(method, config["arch"]).to(device)
    vgg = None
    if method != "wav2lip" and (config["losses"]["perceptual"] or config["losses"]["triplet"]):
        vgg = load_vgg19(config["perceptual"]["layers"], config["vgg_path"], config["seed"])[0].to(device)
    params = gen.trainable_parameters() if hasattr(gen, "trainable_parameters") else gen.parameters()
    betas = tuple(config["optim"]["betas"])
    opt_g = torch.optim.Adam(params, lr=config["optim"]["lr"], betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config["optim"]["lr"], betas=betas)
    reader = None
    if method == "stabilized" and config["losses"].get("mouth_shape"):
        from lipforge.train.artifacts import load_mouth_reader

        reader = load_mouth_reader(config["expert_path"], expert).to(device)
    return TrainingParts(expert, gen, disc, vgg, opt_g, opt_d, weight_average(gen, config.get("ema_decay")), reader)


def checkpoint_state(parts: TrainingParts, step: int, history: list, seconds: float, attempts: list) -> dict:
    """What a checkpoint saves of a run at `step` (`restore_parts` reads it back); `attempts`: who trained it
    (`runner.training_attempts`)."""
    return {"step": step, "generator": parts.gen.state_dict(), "generator_ema": average_state(parts.ema),
            "discriminator": parts.disc.state_dict(), "opt_g": parts.opt_g.state_dict(),
            "opt_d": parts.opt_d.state_dict(), "history": history, "train_seconds": seconds,
            "training_attempts": attempts}


def restore_parts(parts: TrainingParts, state: dict) -> None:
    """Load a `checkpoint_state` into freshly built parts."""
    parts.gen.load_state_dict(state["generator"])
    restore_average(parts.ema, state.get("generator_ema"), state["step"])
    parts.disc.load_state_dict(state["discriminator"])
    parts.opt_g.load_state_dict(state["opt_g"])
    parts.opt_d.load_state_dict(state["opt_d"])


def on_device(config: dict, device) -> dict:
    """`config` with its precision setting resolved for `device` (`auto`: bf16 where the device runs it natively)."""
    return {**config, "precision": resolve_precision(config["precision"], device)}


def train_generator_loop(config: dict) -> None:
    device, rank, world = runner.setup_worker(config)
    config = on_device(config, device)
    parts = training_parts(config, device)
    state = runner.restore()
    start, history, seconds = 0, [], 0.0
    if state is not None:
        restore_parts(parts, state)
        start, history, seconds = state["step"], state["history"], state["train_seconds"]
    # DDP-wrapped when there is more than one worker; `parts` keeps the plain networks for the checkpoints
    gen, disc = runner.prepare(parts.gen), runner.prepare(parts.disc)
    workers = runner.gather_worker_records(rank, world, {"precision": config["precision"]})
    attempts = runner.training_attempts(state, start, workers)

    clips = load_clips(config["face_dir"], config["mel_index"], ("train",))
    silent = load_silent_refs(config.get("silent_refs"))
    per_worker = max(1, config["optim"]["batch_size"] // world)
    augment = WindowAugment(**config["augment"])
    running: dict[str, list[float]] = {}
    for step in range(start, config["optim"]["steps"]):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config["seed"], rank, step])
        batch = to_device(generator_batch(clips, rng, per_worker, silent, audio_offset(config["build"])), device,
                          augment, np.random.default_rng([config["seed"], rank, step, 1]))
        terms, loss, d_loss = generator_step(config, step, batch, gen, disc, parts.opt_g, parts.opt_d, parts.expert,
                                             parts.vgg, parts.mouth_reader)
        update_average(parts.ema, parts.gen)
        if d_loss is not None:
            running.setdefault("disc", []).append(d_loss.item())
        seconds += time.perf_counter() - t0
        for name, value in terms.items():
            running.setdefault(name, []).append(value.item())
        running.setdefault("total", []).append(loss.item())

        done = step + 1
        if done % config["log_every"] == 0 or done == config["optim"]["steps"]:
            history.append({"step": done, **{k: float(np.mean(v)) for k, v in running.items()},
                            "samples_per_s": done * config["optim"]["batch_size"] / max(seconds, 1e-9)})
            running = {}
        if done % config["checkpoint_every"] == 0 or done == config["optim"]["steps"]:
            state = checkpoint_state(parts, done, history, seconds, attempts)
            runner.report({"step": done, "loss": loss.item()}, state, rank)
            if runner.interrupt_requested(done):
                raise SystemExit(f"stopped after step {done} (LIPFORGE_STOP_AFTER_STEP)")
