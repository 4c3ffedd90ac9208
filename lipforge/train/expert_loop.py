"""Lip-sync expert training (one Ray Train worker's loop): Wav2Lip's recipe, BCE on the cosine similarity
of lower-half-face and mel embeddings, half the pairs in sync and half shifted; plus lipforge's three additions
for corpora with few faces (all params): per-window augmentation, the auxiliary mouth-shape loss and
multi-way matching of each in-sync window against off-sync audio of its own clip."""
from __future__ import annotations

import time

import numpy as np
import torch

from lipforge.losses import cosine_similarity, mouth_shape_loss, multiway_sync_loss, sync_bce_loss
from lipforge.metrics.ranking import roc_auc
from lipforge.train import runner
from lipforge.train.augment import WindowAugment, augment_windows
from lipforge.train.data import WINDOW, Negatives, expert_batch, fixed_expert_set, load_clips
from lipforge.train.mouth_shape import N_DESCRIPTORS, standardizer
from lipforge.train.lr_schedule import expert_lr, set_lr
from lipforge.train.weight_average import (average_state, delivered_weights, restore_average, update_average,
                                           weight_average)
from models.experts import ExpertWithMouthHeads, build_expert, lower_half


def expert_inputs(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    faces = lower_half(torch.from_numpy(batch["frames"]).to(device))
    return faces, torch.from_numpy(batch["mels"]).to(device), torch.from_numpy(batch["label"]).to(device)


@torch.no_grad()
def score_pairs(model: torch.nn.Module, batch: dict, device: torch.device, chunk: int = 128) -> dict:
    """Loss, sync/off-sync accuracy (similarity threshold 0.5) and the threshold-free ROC AUC on a fixed set of pairs."""
    model.eval()
    sims, labels = [], []
    n = len(batch["label"])
    for i in range(0, n, chunk):
        part = {k: v[i:i + chunk] for k, v in batch.items()}
        faces, mels, label = expert_inputs(part, device)
        audio, video = model(faces, mels)
        sims.append(cosine_similarity(audio, video))
        labels.append(label)
    model.train()
    sim, label = torch.cat(sims), torch.cat(labels)
    return {"loss": float(sync_bce_loss(sim, label)), "accuracy": float(((sim > 0.5).float() == label).float().mean()),
            "auc": roc_auc(sim.cpu().numpy(), label.cpu().numpy())}


def build_trainable(config: dict) -> torch.nn.Module:
    """The module that trains: the expert, wrapped with the mouth-shape heads when their loss is on."""
    expert = build_expert(config["arch"], **config["arch_kwargs"])
    return ExpertWithMouthHeads(expert, WINDOW, N_DESCRIPTORS) if config["mouth_shape_weight"] > 0 else expert


def mouth_shape_targets(clips: list) -> dict[str, np.ndarray]:
    """clip id -> (T, 3) mouth-shape descriptors standardized with the statistics of these (the training) clips,
    computed once for the whole run."""
    mean, std = standardizer([clip.mouth_shapes for clip in clips])
    return {clip.clip_id: (clip.mouth_shapes - mean) / std for clip in clips}


def train_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, device: torch.device,
               augment: WindowAugment, aug_rng: np.random.Generator, shape_weight: float,
               multiway_weight: float = 0.0, multiway_temperature: float = 0.1) -> tuple[float, float, float, float]:
    """One optimizer step on a batch: sync BCE on the (augmented) windows, plus `shape_weight` x the mouth-shape
    loss when the batch carries mouth-shape targets (`video_mouth`, `audio_mouth`; `net` then has the heads),
    plus `multiway_weight` x the multi-way matching loss when it carries `candidate_mels` (off-sync audio for
    each in-sync window). -> (sync BCE, accuracy, shape loss, multi-way loss)."""
    faces, mels, label = expert_inputs(batch, device)
    faces = augment_windows(faces, aug_rng, augment)
    n = len(label)
    if "candidate_mels" in batch:  # the candidates go through the audio encoder in the same pass as the pairs
        candidates = torch.from_numpy(batch["candidate_mels"]).to(device)
        mels = torch.cat([mels, candidates.flatten(0, 1)])
    if "video_mouth" in batch:
        audio, video, audio_shape, face_shape = net(faces, mels)
        shape_loss = mouth_shape_loss(face_shape, audio_shape[:n], torch.from_numpy(batch["video_mouth"]).to(device),
                                      torch.from_numpy(batch["audio_mouth"]).to(device))
    else:
        audio, video = net(faces, mels)
        shape_loss = torch.zeros((), device=device)
    sim = cosine_similarity(audio[:n], video)
    sync_loss = sync_bce_loss(sim, label)
    multiway_loss = torch.zeros((), device=device)
    if "candidate_mels" in batch:
        in_sync = label > 0.5
        k = candidates.shape[1]
        off_sync = cosine_similarity(video[in_sync].repeat_interleave(k, 0), audio[n:]).view(-1, k)
        multiway_loss = multiway_sync_loss(sim[in_sync], off_sync, multiway_temperature)
    loss = sync_loss + shape_weight * shape_loss + multiway_weight * multiway_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return (sync_loss.item(), ((sim > 0.5).float() == label).float().mean().item(), shape_loss.item(),
            multiway_loss.item())


def trained_expert(net: torch.nn.Module) -> torch.nn.Module:
    """The expert inside the (possibly DDP-wrapped, possibly mouth-head-wrapped) training module."""
    net = runner.unwrap(net)
    return net.expert if isinstance(net, ExpertWithMouthHeads) else net


def expert_from_checkpoint(config: dict, state: dict) -> torch.nn.Module:
    """The bare expert (mouth-shape heads dropped) from a checkpoint of this loop: its weight average when the
    run kept one (`ema_decay`), else the last step's weights."""
    net = build_trainable(config)
    net.load_state_dict(delivered_weights(state, "net"))
    return trained_expert(net)


def mouth_heads_from_checkpoint(config: dict, state: dict) -> dict | None:
    """The weights of the mouth-shape heads the expert trained with (the same average as `expert_from_checkpoint`),
    or None when it trained without them. Saved beside the expert: G_L's `mouth_shape` term reads mouths with the
    face head (models.experts.MouthReader)."""
    net = build_trainable(config)
    if not isinstance(net, ExpertWithMouthHeads):
        return None
    net.load_state_dict(delivered_weights(state, "net"))
    return net.heads_state()


def train_expert_loop(config: dict) -> None:
    device, rank, world = runner.setup_worker(config)
    torch.manual_seed(config["seed"])
    shape_weight = config["mouth_shape_weight"]
    net = build_trainable(config).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
    ema = weight_average(net, config.get("ema_decay"))
    state = runner.restore()
    start, history, seconds = 0, [], 0.0
    if state is not None:
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        restore_average(ema, state.get("net_ema"), state["step"])
        start, history, seconds = state["step"], state["history"], state["train_seconds"]
    net = runner.prepare(net)
    attempts = runner.training_attempts(state, start, runner.gather_worker_records(rank, world))

    train = load_clips(config["face_dir"], config["mel_index"], ("train",))
    shape_targets = mouth_shape_targets(train) if shape_weight > 0 else None
    negatives = Negatives(config["negative_other_clip_fraction"], config["min_negative_shift"],
                          config["negative_silence_level"])
    heldout = {}
    for split in ("val", "test"):
        try:
            clips = load_clips(config["face_dir"], config["mel_index"], (split,))
        except Exception:  # noqa: BLE001 - a corpus without this split simply has no held-out score
            continue
        heldout[split] = fixed_expert_set(clips, config["eval_windows"], config["seed"] + 1, negatives)
    augment = WindowAugment(**config["augment"])
    multiway = config["multiway_candidates"] if config["multiway_weight"] > 0 else 0
    per_worker = max(2, config["batch_size"] // world)
    running = []
    for step in range(start, config["steps"]):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config["seed"], rank, step])
        # The candidates draw from their own stream, so switching them on leaves every other draw as it was.
        batch = expert_batch(train, rng, per_worker, negatives, mouth_shapes=shape_targets, multiway=multiway,
                             multiway_rng=np.random.default_rng([config["seed"], rank, step, 2]))
        set_lr([optimizer], expert_lr(config["lr"], config["lr_schedule"], step, config["steps"]))
        losses = train_step(net, optimizer, batch, device, augment, np.random.default_rng([config["seed"], rank, step, 1]),
                            shape_weight, config["multiway_weight"], config["multiway_temperature"])
        update_average(ema, runner.unwrap(net))
        seconds += time.perf_counter() - t0
        running.append(losses)

        done = step + 1
        row = None
        if done % config["log_every"] == 0 or done == config["steps"]:
            row = {"step": done, "train_loss": float(np.mean([r[0] for r in running])),  # the sync BCE
                   "train_accuracy": float(np.mean([r[1] for r in running])),
                   "train_mouth_shape_loss": float(np.mean([r[2] for r in running])),
                   "train_multiway_loss": float(np.mean([r[3] for r in running])),
                   "samples_per_s": done * config["batch_size"] / max(seconds, 1e-9)}
            running = []
        if done % config["eval_every"] == 0 or done == config["steps"]:
            row = row or {"step": done}
            for split, pairs in heldout.items():
                scores = score_pairs(trained_expert(net if ema is None else ema.module), pairs, device)
                row.update({f"{split}_{k}": v for k, v in scores.items()})
        if row is not None:
            history.append(row)
        if done % config["checkpoint_every"] == 0 or done == config["steps"]:
            state = {"step": done, "net": runner.unwrap(net).state_dict(),
                     "net_ema": average_state(ema),
                     "optimizer": optimizer.state_dict(),
                     "history": history, "train_seconds": seconds, "training_attempts": attempts}
            runner.report({"step": done, "loss": losses[0]}, state, rank)
            if runner.interrupt_requested(done):
                raise SystemExit(f"stopped after step {done} (LIPFORGE_STOP_AFTER_STEP)")
