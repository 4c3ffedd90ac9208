"""Lip-sync expert training (one Ray Train worker's loop): Wav2Lip's recipe, BCE on the cosine similarity
of lower-half-face and mel embeddings, half the pairs in sync and half shifted."""
from __future__ import annotations

import time

import numpy as np
import torch

from lipforge.losses import cosine_similarity, sync_bce_loss
from lipforge.metrics.ranking import roc_auc
from lipforge.train import runner
from lipforge.train.data import Negatives, expert_batch, fixed_expert_set, load_clips
from models.experts import build_expert, lower_half


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


def train_expert_loop(config: dict) -> None:
    device, rank, world = runner.setup_worker(config)
    torch.manual_seed(config["seed"])
    model = build_expert(config["arch"], **config["arch_kwargs"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    state = runner.restore()
    start, history, seconds, resumed = 0, [], 0.0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history, seconds = state["step"], state["history"], state["train_seconds"]
        resumed = state["resumed_from"] + [start]
    model = runner.prepare(model)

    train = load_clips(config["face_dir"], config["mel_index"], ("train",))
    negatives = Negatives(config["negative_other_clip_fraction"], config["min_negative_shift"],
                          config["negative_silence_level"])
    heldout = {}
    for split in ("val", "test"):
        try:
            clips = load_clips(config["face_dir"], config["mel_index"], (split,))
        except Exception:  # noqa: BLE001 - a corpus without this split simply has no held-out score
            continue
        heldout[split] = fixed_expert_set(clips, config["eval_windows"], config["seed"] + 1, negatives)
    per_worker = max(2, config["batch_size"] // world)
    running = []
    for step in range(start, config["steps"]):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config["seed"], rank, step])
        batch = expert_batch(train, rng, per_worker, negatives)
        faces, mels, label = expert_inputs(batch, device)
        audio, video = model(faces, mels)
        sim = cosine_similarity(audio, video)
        loss = sync_bce_loss(sim, label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - t0
        running.append((loss.item(), ((sim > 0.5).float() == label).float().mean().item()))

        done = step + 1
        row = None
        if done % config["log_every"] == 0 or done == config["steps"]:
            row = {"step": done, "train_loss": float(np.mean([r[0] for r in running])),
                   "train_accuracy": float(np.mean([r[1] for r in running])),
                   "samples_per_s": done * config["batch_size"] / max(seconds, 1e-9)}
            running = []
        if done % config["eval_every"] == 0 or done == config["steps"]:
            row = row or {"step": done}
            for split, pairs in heldout.items():
                scores = score_pairs(model, pairs, device)
                row.update({f"{split}_{k}": v for k, v in scores.items()})
        if row is not None:
            history.append(row)
        if done % config["checkpoint_every"] == 0 or done == config["steps"]:
            state = {"step": done, "model": runner.unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                     "history": history, "train_seconds": seconds, "resumed_from": resumed}
            runner.report({"step": done, "loss": loss.item()}, state, rank)
            if runner.interrupt_requested(done):
                raise SystemExit(f"stopped after step {done} (LIPFORGE_STOP_AFTER_STEP)")
