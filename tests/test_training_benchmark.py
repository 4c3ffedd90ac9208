from pathlib import Path

import pytest

from benchmarks.training import params_with

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_overrides_set_nested_values_parsed_as_yaml():
    params = params_with(["train_expert.avsyncnet.image_layers=[3,4,6,3]", "generator.wav2lip_width=1.0",
                          "perceptual.frames=all"], PARAMS)
    assert params.train_expert.avsyncnet.image_layers == [3, 4, 6, 3]
    assert params.generator.wav2lip_width == 1.0
    assert params.perceptual.frames == "all"
    assert params.train_expert.batch_size == params_with([], PARAMS).train_expert.batch_size


@pytest.mark.parametrize("item, message", [
    ("train_expert.batch_sise=64", "no key 'train_expert.batch_sise'"),
    ("trainer_x.use_gpu=true", "no section 'trainer_x'"),
    ("train_expert.batch_size", "expected KEY=VALUE"),
])
def test_a_mistyped_override_stops_instead_of_timing_the_default(item, message):
    with pytest.raises(SystemExit, match=message):
        params_with([item], PARAMS)


def test_an_override_is_validated_like_params_yaml():
    from lipforge.params import ParamsError

    with pytest.raises(ParamsError, match="params.yaml"):
        params_with(["generator.stabilized_width=wide"], PARAMS)
