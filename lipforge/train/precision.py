"""Mixed precision for the generators' heavy forward passes (the generator itself and the perceptual network).

`precision: bf16` runs a module's convolutions and matrix products in bfloat16 under torch.autocast and hands
its outputs back as float32, so the loss arithmetic, the weights, their gradients and the optimiser state stay
float32 (bfloat16 has float32's range, so no loss scaling is needed, unlike float16). What it buys depends on
the hardware: on a CPU with AVX-512 BF16 or AMX, and on GPUs from Ampere on, those kernels run natively; on a
CPU without them a step can get slower, not faster (`python benchmarks/training.py --set
train_generator.precision=bf16` measures it). So `auto` resolves, on each training worker, to bf16 where its
device runs bfloat16 natively and to fp32 elsewhere; the stage reports what it resolved to. The numbers change
with it: a bf16 run is a different run, not the same one faster.
"""
from __future__ import annotations

from typing import Any, get_args

import torch

from lipforge.params import Precision, PrecisionSetting

PRECISIONS = get_args(Precision)  # ("fp32", "bf16")
SETTINGS = get_args(PrecisionSetting)  # ("auto", "fp32", "bf16")

# torch's own CPU feature checks (private in torch 2.13; absent ones count as "no")
_CPU_BF16_FEATURES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 convolutions and matrix products in hardware: a CPU with AVX-512 BF16 or AMX,
    a CUDA GPU from Ampere on. Elsewhere oneDNN emulates them or falls back, and bf16 costs time instead."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return any(getattr(torch.cpu, name, lambda: False)() for name in _CPU_BF16_FEATURES)
    return False


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """What a `precision` param means on `device`: `auto` is bf16 where `native_bf16`, else fp32."""
    if setting not in SETTINGS:
        raise ValueError(f"precision {setting!r}: expected one of {SETTINGS}")
    if setting == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return setting


def to_float32(out: Any) -> Any:
    """Tensors (also inside lists, tuples and dicts) as float32; anything else as it is."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple) and hasattr(out, "_fields"):  # a namedtuple takes its fields one by one
        return type(out)(*(to_float32(o) for o in out))
    if isinstance(out, (list, tuple)):
        return type(out)(to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: to_float32(v) for k, v in out.items()}
    return out


def forward_in(precision: str, module, *inputs: Any) -> Any:
    """module(*inputs), in bfloat16 under autocast for 'bf16' (outputs back as float32), as it is for 'fp32'.

    The backward pass of what ran under autocast runs in the dtypes its forward used, so the caller
    differentiates through the float32 outputs as usual."""
    if precision == "fp32":
        return module(*inputs)
    if precision != "bf16":
        raise ValueError(f"precision {precision!r}: expected one of {PRECISIONS}")
    device = next(x.device for x in inputs if isinstance(x, torch.Tensor))
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = module(*inputs)
    return to_float32(out)
