"""Learning-rate schedules against hand-computed values."""
import pytest
import torch

from lipforge.train.lr_schedule import cosine_lr, expert_lr, generator_lr, set_lr


def test_cosine_decays_from_the_base_lr_to_zero():
    assert cosine_lr(1e-3, 0, 100) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 25, 100) == pytest.approx(0.5e-3 * (1 + 2 ** -0.5))  # cos(pi/4) = 1/sqrt(2)
    assert cosine_lr(1e-3, 50, 100) == pytest.approx(5e-4)
    assert cosine_lr(1e-3, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(1e-3, 150, 100) == pytest.approx(0.0, abs=1e-12)  # past the end: stays at 0


def test_expert_schedules():
    assert expert_lr(1e-3, "constant", 70, 100) == 1e-3
    assert expert_lr(1e-3, "cosine", 50, 100) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="unknown lr schedule 'step'"):
        expert_lr(1e-3, "step", 50, 100)


def test_set_lr_writes_every_param_group():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_lr([opt], 0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]


def test_the_pixel_only_phase_has_its_own_learning_rate():
    assert [generator_lr(1e-4, 1e-3, 2, step) for step in range(4)] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert generator_lr(1e-4, 1e-3, 0, 0) == 1e-4
