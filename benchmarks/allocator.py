"""G_L training steps with glibc keeping freed memory (lipforge.cpu_allocator) and without (a benchmark, not a test).

    dvc repro train_expert@train          # the sample corpus's crops, mels and trained expert
    python benchmarks/allocator.py [--steps 10] [--method stabilized] \
        [--set train_generator.optim.batch_size=16]

Runs the same steps (every switched-on loss term, params.yaml's batch) in two fresh processes, one with
LIPFORGE_KEEP_FREED_MEMORY=0, each in a thread other than the main one as Ray Train runs its loop, and prints each one's seconds per step, its peak resident memory and the sha256 of
the generator weights after the steps: the two hashes must be equal (the allocator changes speed, not arithmetic).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_steps(method: str, steps: int, overrides: list[str]) -> dict:
    """In this process: `steps` generator steps from the stage's own config and parts; seconds per step after two
    warm-up steps, peak RSS and the weights' hash."""
    import torch

    from benchmarks.training import FACE_DIR, MEL_INDEX, generator_step, params_with, timed_steps
    from lipforge.cpu_allocator import keep_freed_memory
    from lipforge.train.data import load_clips

    status = keep_freed_memory()
    params = params_with(overrides)
    torch.set_num_threads(int(params.trainer.cpus_per_worker))
    section = params.train_generator
    clips = load_clips(FACE_DIR, MEL_INDEX, ("train",))
    step, parts = generator_step(params, method, section, clips, torch.device("cpu"))
    seconds = timed_steps(step, steps, torch.device("cpu"))
    digest = hashlib.sha256()
    for tensor in parts.gen.state_dict().values():
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return {"keep_freed_memory": status, "seconds_per_step": round(seconds, 3),
            "samples_per_s": round(section.optim.batch_size / seconds, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "generator_sha256": digest.hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--method", default="stabilized", choices=["stabilized", "wav2lip", "silent"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a params.yaml entry")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        from lipforge.cpu_allocator import keep_freed_memory

        from benchmarks.training import in_thread

        keep_freed_memory()  # before the thread starts, as the Ray worker setup hook does
        print(json.dumps(in_thread(lambda: run_steps(args.method, args.steps, args.set))))
        return
    cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--method", args.method]
    cmd += [f"--set={item}" for item in args.set]
    out = {}
    for name, flag in (("kept", "1"), ("returned", "0")):
        env = {**os.environ, "LIPFORGE_KEEP_FREED_MEMORY": flag}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    out["speedup"] = round(out["returned"]["seconds_per_step"] / out["kept"]["seconds_per_step"], 2)
    out["same_weights"] = out["kept"]["generator_sha256"] == out["returned"]["generator_sha256"]
    print(json.dumps({"method": args.method, "steps": args.steps, "overrides": args.set, **out}, indent=2))
    if not out["same_weights"]:
        raise SystemExit("the two runs trained different weights: the allocator setting changed the arithmetic")


if __name__ == "__main__":
    main()
