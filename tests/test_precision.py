from collections import namedtuple

import pytest
import torch
from torch import nn

from lipforge.train.precision import PRECISIONS, SETTINGS, forward_in, native_bf16, resolve_precision, to_float32


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


def test_params_accept_auto_fp32_and_bf16_only():
    from benchmarks.training import params_with
    from lipforge.params import ParamsError

    # the code runs exactly what params accept: one list, in lipforge.params
    assert PRECISIONS == ("fp32", "bf16") and SETTINGS == ("auto", *PRECISIONS)
    defaults = params_with([])
    assert defaults.train_generator.precision == "auto"
    assert defaults.train_generator.wav2lip_precision == "fp32" and defaults.silent_refs.precision == "fp32"
    for setting in SETTINGS:
        assert params_with([f"train_generator.precision={setting}"]).train_generator.precision == setting
        forward_in(resolve_precision(setting, torch.device("cpu")), nn.Identity(), torch.ones(1))
    with pytest.raises(ParamsError, match="precision"):
        params_with(["silent_refs.precision=fp16"])


def _cpu_features(monkeypatch, avx512_bf16: bool, amx: bool):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, "bf16"), (False, True, "bf16"),
                                                        (False, False, "fp32")])
def test_auto_is_bf16_only_on_a_cpu_that_runs_it_natively(monkeypatch, avx512_bf16, amx, expected):
    _cpu_features(monkeypatch, avx512_bf16, amx)
    cpu = torch.device("cpu")
    assert native_bf16(cpu) == (expected == "bf16")
    assert resolve_precision("auto", cpu) == expected
    # an explicit setting is what it says, whatever the hardware
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_auto_on_a_device_of_unknown_kind_is_fp32(monkeypatch):
    _cpu_features(monkeypatch, True, True)
    assert resolve_precision("auto", torch.device("meta")) == "fp32"


def test_a_cpu_without_torchs_feature_checks_counts_as_not_native(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_an_unknown_setting_is_refused_by_name():
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", torch.device("cpu"))
