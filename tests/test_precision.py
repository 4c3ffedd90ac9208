from collections import namedtuple

import pytest
import torch
from torch import nn

from lipforge.train.precision import PRECISIONS, forward_in, to_float32


def test_to_float32_converts_floating_tensors_inside_containers_and_leaves_the_rest():
    out = to_float32({"a": [torch.ones(2, dtype=torch.bfloat16), (torch.zeros(1, dtype=torch.bfloat16), 3)],
                      "b": torch.arange(3)})
    assert out["a"][0].dtype == torch.float32 and out["a"][1][0].dtype == torch.float32 and out["a"][1][1] == 3
    assert isinstance(out["a"][1], tuple) and out["b"].dtype == torch.int64
    Pair = namedtuple("Pair", "x n")
    pair = to_float32(Pair(torch.ones(1, dtype=torch.bfloat16), 2))
    assert isinstance(pair, Pair) and pair.x.dtype == torch.float32 and pair.n == 2


def test_fp32_is_the_plain_forward():
    torch.manual_seed(0)
    conv, x = nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    assert torch.equal(forward_in("fp32", conv, x), conv(x))


def test_bf16_runs_the_convolution_in_bfloat16_and_hands_back_float32_with_float32_gradients():
    torch.manual_seed(0)
    conv, x = nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    ref = conv(x)
    out = forward_in("bf16", conv, x)
    assert out.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa: close to float32's result, and not equal to it
    assert torch.allclose(out, ref, rtol=0.05, atol=0.05) and not torch.equal(out, ref)
    out.square().mean().backward()
    assert conv.weight.grad.dtype == torch.float32 and torch.isfinite(conv.weight.grad).all()


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp16"):
        forward_in("fp16", nn.Identity(), torch.ones(1))


def test_params_accept_fp32_and_bf16_only():
    from benchmarks.training import params_with
    from lipforge.params import ParamsError

    assert PRECISIONS == ("fp32", "bf16")  # the code runs exactly what params accept: one list, in lipforge.params
    assert params_with([]).train_generator.precision == "fp32"
    for precision in PRECISIONS:
        assert params_with([f"train_generator.precision={precision}"]).train_generator.precision == precision
        forward_in(precision, nn.Identity(), torch.ones(1))
    with pytest.raises(ParamsError, match="precision"):
        params_with(["silent_refs.precision=fp16"])
