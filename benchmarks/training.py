"""Training and evaluation throughput with the params.yaml architectures (a benchmark, not a test).

    dvc repro evaluate                 # preprocessed sample corpus, trained experts and generator
    python benchmarks/training.py [--steps 20] [--device cpu|cuda] [--set train_expert.batch_size=64 ...]

Prints samples/s of one training step (forward, backward, optimizer) of the train expert, the eval expert,
G_S and both generator methods, and of the generators' pixel-only phase (`pixel_only_steps`; batch sizes from
params; a sample is one 5-frame window), measured in this
process without Ray (so Ray start-up is excluded; glibc keeps freed memory as in the stages' workers), and
evaluation clips/s of `lipforge.evaluation` on the
test split (one process, one thread per clip as in the evaluate stage's Ray tasks; CPU only, as in the stage).
`--set KEY=VALUE` overrides a params.yaml entry for this run only (VALUE read as YAML), e.g. the paper's widths.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lipforge.cpu_allocator import keep_freed_memory
from lipforge.params import DEFAULT_PARAMS, parse_params
from lipforge.train import generator_loop as G
from lipforge.train.data import Negatives, SilentRefs, expert_batch, generator_batch, load_clips
from lipforge.train.augment import WindowAugment
from lipforge.train.expert_loop import build_trainable, mouth_shape_targets, train_step
from lipforge.train.generator_config import generator_config
from lipforge.train.precision import resolve_precision
from lipforge.train.weight_average import update_average, weight_average
from stages.train_expert import arch_kwargs

FACE_DIR, MEL_INDEX = Path("data/face_crop"), Path("data/mel/index.parquet")
EXPERT = Path("data/experts/train/model.pt")


def sync(device) -> None:
    # CUDA kernels run asynchronously: without this the clock would stop before the GPU has finished
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step, n: int, device, warmup: int = 2) -> float:
    for _ in range(warmup):  # model caches, cuDNN algorithm choice
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return (time.perf_counter() - t0) / n


def in_thread(work):
    """work() in a thread other than the main one, as Ray Train runs a training loop (glibc gives a new thread its
    own malloc arena unless keep_freed_memory ran first); its result, or SystemExit when the thread failed."""
    result = []
    worker = threading.Thread(target=lambda: result.append(work()))
    worker.start()
    worker.join()
    if not result:
        raise SystemExit("the training thread failed; see the traceback above")
    return result[0]


def params_with(overrides: list[str], path: Path | str = DEFAULT_PARAMS):
    """params.yaml with dotted KEY=VALUE overrides (VALUE parsed as YAML), validated like the stages' params."""
    raw = yaml.safe_load(Path(path).read_text())
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. --set train_expert.batch_size=64")
        *sections, leaf = key.split(".")
        node = raw
        for part in sections:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"--set {item!r}: params.yaml has no section {key.rsplit('.', 1)[0]!r}")
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"--set {item!r}: params.yaml has no key {key!r} (a typo would silently time the default)")
        node[leaf] = yaml.safe_load(value)
    return parse_params(raw, path)


def bench_expert(params, name: str, clips, steps: int, device) -> float:
    """The train_expert loop's own step (window augmentation, mouth-shape and multi-way losses and weight average
    as in params)."""
    cfg, spec = params.train_expert, params.train_expert.experts[name]
    config = {"arch": spec.arch, "arch_kwargs": arch_kwargs(params, spec.arch),
              "mouth_shape_weight": cfg.mouth_shape_weight}
    net = build_trainable(config).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    average = weight_average(net, cfg.ema_decay)
    augment = WindowAugment(**cfg.augment.model_dump())
    shape_targets = mouth_shape_targets(clips) if cfg.mouth_shape_weight > 0 else None
    rng = np.random.default_rng(0)
    bs = cfg.batch_size
    multiway = cfg.multiway_candidates if cfg.multiway_weight > 0 else 0

    def step():
        batch = expert_batch(clips, rng, bs, Negatives(), mouth_shapes=shape_targets, multiway=multiway)
        train_step(net, opt, batch, device, augment, rng, cfg.mouth_shape_weight, cfg.multiway_weight,
                   cfg.multiway_temperature)
        update_average(average, net)

    return bs / timed_steps(step, steps, device)


def generator_step(params, method: str, section, clips, device, pixel_only: bool = False):
    """One step of the stage's generator loop, as a closure over its parts: (step, parts).

    Every switched-on loss term, or (`pixel_only`) a step of the pixel-only phase; the stage's own loop config and
    build record (G_L's audio skip and mel offset included), at step 0 of a run whose pixel-only phase is one step
    long (pixel_only) or absent. Each clip's first window stands in for G_S's closed-lip references, so the
    benchmarks need no silent_refs run."""
    config = generator_config(params, section, method, EXPERT, FACE_DIR, MEL_INDEX, seed_offset=0)
    config = G.on_device(config, device)
    cfg = {**config, "pixel_only_steps": int(pixel_only)}
    parts = G.training_parts(config, device)
    rng = np.random.default_rng(0)
    bs = section.optim.batch_size
    augment = WindowAugment(**config["augment"])
    refs = ({c.clip_id: SilentRefs(c.frames.read_window(0, 5), np.arange(5)) for c in clips}
            if method == "stabilized" else None)
    offset = G.audio_offset(config["build"])

    def step():
        batch = G.to_device(generator_batch(clips, rng, bs, refs, offset), device, augment, rng)
        G.generator_step(cfg, 0, batch, parts.gen, parts.disc, parts.opt_g, parts.opt_d, parts.expert, parts.vgg,
                         parts.mouth_reader)
        update_average(parts.ema, parts.gen)

    return step, parts


def bench_generator(params, method: str, section, clips, steps: int, device, pixel_only: bool = False) -> float:
    """Samples/s of `generator_step`."""
    step, _ = generator_step(params, method, section, clips, device, pixel_only)
    return section.optim.batch_size / timed_steps(step, steps, device)


def bench_evaluation(params, n_clips: int) -> float:
    from lipforge.evaluation import evaluate_clip
    from stages.evaluate import FACE_DIR as EFACE, MANIFEST, SILENT_INDEX, clip_context, clip_rows

    rows = clip_rows(params, EFACE, MEL_INDEX, MANIFEST, SILENT_INDEX)[:n_clips]
    ctx = clip_context(params)
    evaluate_clip(rows[0], ctx)  # warm-up (model loading, dlib)
    t0 = time.perf_counter()
    for row in rows:
        evaluate_clip(row, ctx)
    return len(rows) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eval-clips", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a params.yaml entry")
    args = ap.parse_args()
    params = params_with(args.set)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(int(params.trainer.cpus_per_worker))
    clips = load_clips(FACE_DIR, MEL_INDEX, ("train",))
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch_threads": torch.get_num_threads(), "steps": args.steps, "overrides": args.set,
           # as in the stages' training workers (lipforge.cpu_allocator; LIPFORGE_KEEP_FREED_MEMORY=0 to compare)
           "keep_freed_memory": keep_freed_memory(),
           # what each generator's precision param resolves to here (`auto`: bf16 where the device runs it natively)
           "precision": {"G_S": resolve_precision(params.silent_refs.precision, device),
                         "wav2lip": resolve_precision(params.train_generator.wav2lip_precision, device),
                         "stabilized": resolve_precision(params.train_generator.precision, device)}}
    for name in params.train_expert.experts:
        spec = params.train_expert.experts[name]
        out[f"expert_{name}_{spec.arch}_samples_per_s"] = round(bench_expert(params, name, clips, args.steps, device), 1)
    out["silent_G_S_samples_per_s"] = round(bench_generator(params, "silent", params.silent_refs, clips, args.steps, device), 2)
    for method in ("wav2lip", "stabilized"):
        out[f"generator_{method}_samples_per_s"] = round(
            bench_generator(params, method, params.train_generator, clips, args.steps, device), 2)
    out["generator_pixel_only_phase_samples_per_s"] = round(
        bench_generator(params, "stabilized", params.train_generator, clips, args.steps, device, pixel_only=True), 2)
    if device.type == "cpu":
        torch.set_num_threads(1)
        out["evaluate_clips_per_s_one_thread"] = round(bench_evaluation(params, args.eval_clips), 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
