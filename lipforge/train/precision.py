"""Mixed precision for the generators' heavy forward passes (the generator itself and the perceptual network).

`precision: bf16` runs a module's convolutions and matrix products in bfloat16 under torch.autocast and hands
its outputs back as float32, so the loss arithmetic, the weights, their gradients and the optimiser state stay
float32 (bfloat16 has float32's range, so no loss scaling is needed, unlike float16). What it buys depends on
the hardware: on a CPU with AVX-512 BF16 or AMX, and on GPUs from Ampere on, those kernels run natively; on a
CPU without them a step can get slower, not faster (`python benchmarks/training.py --set
train_generator.precision=bf16` measures it). The numbers change with it: a bf16 run is a different run, not the
same one faster.
"""
from __future__ import annotations

from typing import Any, get_args

import torch

from lipforge.params import Precision

PRECISIONS = get_args(Precision)  # ("fp32", "bf16")


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
