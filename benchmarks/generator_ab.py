"""Seconds per generator training step under two param settings, A and B, interleaved in one process (a benchmark,
not a test).

    dvc repro train_expert@train          # the sample corpus's crops, mels and trained expert
    python benchmarks/generator_ab.py --b train_generator.precision=bf16 [--a KEY=VALUE ...] \
        [--set KEY=VALUE ...] [--pairs 4] [--method stabilized]

A is params.yaml with `--set` and `--a`, B the same with `--b` instead of `--a`. Each builds its own generator,
discriminator, expert and VGG from the stage's config (`benchmarks/training.py`'s `generator_step`: every
switched-on loss term, params' batch). After two warm-up steps each, the two take turns, two steps a turn,
`--pairs` times, in a thread other than the main one (as Ray Train runs its loop; glibc keeps freed memory as in
the stages' workers), so a change in the machine's pace (another job, a neighbour on the host) reaches both alike.
Prints each one's seconds per step turn by turn, the medians and B's speedup (A's median over B's).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def interleaved_seconds(steps: dict[str, Callable[[], None]], pairs: int, per_turn: int = 2, warmup: int = 2,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Each setting's seconds per step, one entry per turn: after `warmup` untimed steps each, the settings take
    turns in their given order, `per_turn` steps a turn, `pairs` rounds."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(pairs):
        for name, step in steps.items():
            start = clock()
            for _ in range(per_turn):
                step()
            seconds[name].append((clock() - start) / per_turn)
    return seconds


def summary(seconds: dict[str, list[float]]) -> dict:
    """Per-turn figures rounded to ms, the medians, and A's median over B's (above 1: B is faster)."""
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {"seconds_per_step": {name: [round(v, 3) for v in values] for name, values in seconds.items()},
            "median_seconds_per_step": {name: round(m, 3) for name, m in medians.items()},
            "speedup_of_b": round(medians["A"] / medians["B"], 2)}


def measure(method: str, pairs: int, overrides_a: list[str], overrides_b: list[str]) -> dict[str, list[float]]:
    import torch

    from benchmarks.training import FACE_DIR, MEL_INDEX, generator_step, params_with
    from lipforge.train.data import load_clips

    settings = {"A": params_with(overrides_a), "B": params_with(overrides_b)}
    torch.set_num_threads(int(settings["A"].trainer.cpus_per_worker))  # as the stage's worker (trainer params)
    clips = load_clips(FACE_DIR, MEL_INDEX, ("train",))
    steps = {}
    for name, params in settings.items():
        section = params.silent_refs if method == "silent" else params.train_generator
        steps[name] = generator_step(params, method, section, clips, torch.device("cpu"))[0]
    return interleaved_seconds(steps, pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", action="append", default=[], metavar="KEY=VALUE", help="override for A only")
    ap.add_argument("--b", action="append", default=[], metavar="KEY=VALUE", required=True,
                    help="override for B only (at least one: B must differ from A)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for both")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--method", default="stabilized", choices=["stabilized", "wav2lip", "silent"])
    args = ap.parse_args()
    from benchmarks.training import in_thread
    from lipforge.cpu_allocator import keep_freed_memory

    allocator = keep_freed_memory()  # before the thread starts, as the Ray worker setup hook does
    result = in_thread(lambda: measure(args.method, args.pairs, args.set + args.a, args.set + args.b))
    print(json.dumps({"method": args.method, "pairs": args.pairs, "a": args.set + args.a, "b": args.set + args.b,
                      "keep_freed_memory": allocator, **summary(result)}, indent=2))


if __name__ == "__main__":
    main()
