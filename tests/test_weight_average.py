"""The moving average of weights that the training loops can deliver instead of the last step's (`ema_decay`)."""
import pytest
import torch
from torch import nn

from lipforge.train.generator_loop import final_weights
from lipforge.train.weight_average import (average_state, delivered_weights, restore_average, update_average,
                                           weight_average)


def test_average_follows_the_hand_computed_recurrence_for_weights_and_batchnorm_statistics():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    avg = weight_average(model, 0.9)
    for value, mean in [(1.0, 10.0), (2.0, 20.0), (4.0, 40.0)]:
        with torch.no_grad():
            model[0].weight.fill_(value)
            model[1].running_mean.fill_(mean)
        avg.update_parameters(model)
    # the first update copies; then avg = 0.9 avg + 0.1 current: 1 -> 1.1 -> 1.39
    assert avg.module[0].weight.item() == pytest.approx(1.39)
    assert avg.module[1].running_mean.item() == pytest.approx(13.9)
    assert model[0].weight.item() == 4.0  # the training model is untouched


def test_averaging_off_and_bad_decays():
    assert weight_average(nn.Linear(1, 1), None) is None
    restore_average(None, None, 5)  # nothing to restore
    update_average(None, nn.Linear(1, 1))  # nothing to update
    assert average_state(None) is None
    with pytest.raises(ValueError, match="decay"):
        weight_average(nn.Linear(1, 1), 1.0)


def test_a_resumed_average_goes_on_averaging_and_needs_a_checkpointed_one():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(3.0)
    avg = weight_average(model, 0.5)
    restore_average(avg, {"weight": torch.tensor([[1.0]])}, step=7)
    update_average(avg, model)   # not a first update: averages instead of copying
    assert avg.module.weight.item() == pytest.approx(2.0)
    assert average_state(avg)["weight"].item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="ema_decay null"):
        restore_average(avg, None, step=7)


def test_a_run_delivers_its_average_when_it_kept_one():
    assert final_weights({"generator": "last", "generator_ema": "average"}) == "average"
    assert final_weights({"generator": "last", "generator_ema": None}) == "last"
    assert final_weights({"generator": "last"}) == "last"   # checkpoints written before averaging existed
    assert delivered_weights({"net": "last", "net_ema": "average"}, "net") == "average"  # the experts' keys
