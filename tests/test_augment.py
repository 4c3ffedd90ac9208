"""The expert's window augmentation: one transform per window, all frames alike, labels-safe and reproducible."""
import numpy as np
import pytest
import torch

from lipforge.train.augment import WindowAugment, augment_generator_windows, augment_windows, similarity_thetas

OFF = dict(flip=False, max_shift=0.0, max_zoom=0.0, brightness=0.0, colour=0.0)


def windows(n=6, frames=5, h=12, w=16, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((n, frames * 3, h, w)).astype(np.float32))


def test_all_off_returns_the_input_unchanged():
    x = windows()
    assert augment_windows(x, np.random.default_rng(0), WindowAugment(**OFF)) is x


def test_mirror_alone_is_an_exact_left_right_flip_of_about_half_the_windows():
    x = windows(n=64)
    out = augment_windows(x, np.random.default_rng(1), WindowAugment(**{**OFF, "flip": True}))
    same = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x)]
    flipped = [torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x)]
    assert all(s or f for s, f in zip(same, flipped))
    assert 16 <= sum(flipped) <= 48


def test_light_alone_scales_each_colour_channel_by_one_gain_per_window():
    x = 0.2 + windows(n=8) * 0.4  # away from 0 (ratios) and 1 (no clipping at gains up to 1.3 * 1.15)
    aug = WindowAugment(**{**OFF, "brightness": 0.3, "colour": 0.15})
    out = augment_windows(x, np.random.default_rng(2), aug)
    ratio = (out / x).reshape(8, 5, 3, -1)
    per_channel = ratio.mean(dim=-1)
    assert torch.allclose(ratio, per_channel[..., None].expand_as(ratio), atol=1e-4)  # uniform over pixels
    assert torch.allclose(per_channel, per_channel[:, :1].expand_as(per_channel), atol=1e-4)  # same in every frame
    lo, hi = (1 - 0.3) * (1 - 0.15), (1 + 0.3) * (1 + 0.15)
    assert float(per_channel.min()) >= lo - 1e-5 and float(per_channel.max()) <= hi + 1e-5


def test_every_frame_of_a_window_gets_the_same_geometric_transform():
    one = np.random.default_rng(3).random((4, 3, 12, 16)).astype(np.float32)
    x = torch.from_numpy(np.tile(one, (1, 5, 1, 1)))  # five identical frames per window
    out = augment_windows(x, np.random.default_rng(4), WindowAugment()).reshape(4, 5, 3, 12, 16)
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)
    assert not torch.allclose(out[:, 0], torch.from_numpy(one), atol=1e-3)  # and it did transform them


def test_thetas_stay_within_the_configured_ranges():
    aug = WindowAugment(flip=True, max_shift=0.05, max_zoom=0.15)
    th = similarity_thetas(2000, np.random.default_rng(5), aug)
    scale = np.abs(th[:, 0, 0])
    assert np.allclose(scale, th[:, 1, 1]) and scale.min() >= 0.85 and scale.max() <= 1.15
    assert np.abs(th[:, :, 2]).max() <= 0.1  # 0.05 of the side = 0.1 in coordinates spanning [-1, 1]
    assert 0.4 < (th[:, 0, 0] < 0).mean() < 0.6
    assert np.all(th[:, 0, 1] == 0) and np.all(th[:, 1, 0] == 0)


def test_the_same_rng_seed_gives_the_same_augmentation():
    x = windows()
    a = augment_windows(x, np.random.default_rng(7), WindowAugment())
    b = augment_windows(x, np.random.default_rng(7), WindowAugment())
    assert torch.equal(a, b) and a.shape == x.shape


def test_channels_that_are_not_rgb_stacks_are_refused():
    with pytest.raises(ValueError, match="multiple of 3"):
        augment_windows(torch.zeros(2, 4, 8, 8), np.random.default_rng(0), WindowAugment())


def test_a_generator_window_and_its_references_share_one_transform():
    rng = np.random.default_rng(3)
    gt = torch.from_numpy(rng.random((4, 5, 3, 12, 16)).astype(np.float32))
    off = WindowAugment(**OFF)
    assert augment_generator_windows(gt, gt.flip(0), np.random.default_rng(0), off)[0] is gt
    # references equal to their target come out equal to it: the same mirror, shift, zoom and light
    aug = WindowAugment()
    out_gt, out_ref = augment_generator_windows(gt, gt.clone(), np.random.default_rng(1), aug)
    assert out_gt.shape == gt.shape and not torch.equal(out_gt, gt)
    torch.testing.assert_close(out_gt, out_ref)
    # and it is the window augmentation of the 10 stacked frames
    stacked = augment_windows(torch.cat([gt, gt], 1).reshape(4, 30, 12, 16), np.random.default_rng(1), aug)
    torch.testing.assert_close(out_gt, stacked.view(4, 10, 3, 12, 16)[:, :5])
    with pytest.raises(ValueError, match="differ in shape"):
        augment_generator_windows(gt, gt[:, :4], np.random.default_rng(0), aug)
