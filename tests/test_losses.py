"""Losses of lipforge.losses against values worked out by hand on tiny tensors."""
import math

import pytest
import torch

from lipforge.losses import (
    adaptive_triplet_loss,
    cosine_similarity,
    gan_discriminator_loss,
    gan_generator_loss,
    mouth_region_l1_loss,
    mouth_shape_loss,
    mouth_shape_match_loss,
    multiway_sync_loss,
    perceptual_loss,
    pixel_l1_loss,
    stabilized_sync_loss,
    sync_bce_loss,
)

EPS = 1e-6


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------- cosine similarity


def test_cosine_similarity_hand_values():
    # [1,0].[0,1] = 0 -> 0;  [1,1].[2,2] = 4, norms sqrt2*sqrt8 = 4 -> 1;  [3,4].[4,3] = 24, norms 5*5 -> 0.96
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [4.0, 3.0]])
    assert torch.allclose(cosine_similarity(a, b), torch.tensor([0.0, 1.0, 0.96]))


def test_cosine_similarity_zero_vector_is_finite():
    # a zero embedding: numerator 0, denominator clamped to eps -> 0, not NaN
    out = cosine_similarity(torch.zeros(1, 3), torch.ones(1, 3))
    assert out.item() == 0.0


def test_cosine_similarity_rejects_bad_shapes():
    with pytest.raises(ValueError):
        cosine_similarity(torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------------------- sync BCE (Wav2Lip expert loss)


def test_sync_bce_in_sync_and_off_sync():
    # sim 0.9, label 1 -> -log(0.9) = 0.1053605;  label 0 -> -log(1 - 0.9) = -log(0.1) = 2.3025851
    assert sync_bce_loss(t(0.9), t(1.0)).item() == pytest.approx(0.1053605, rel=1e-6)
    assert sync_bce_loss(t(0.9), t(0.0)).item() == pytest.approx(2.3025851, rel=1e-6)
    # batch mean: (0.1053605 + 2.3025851) / 2 = 1.2039728
    assert sync_bce_loss(t(0.9, 0.9), t(1.0, 0.0)).item() == pytest.approx(1.2039728, rel=1e-6)


def test_sync_bce_clamps_at_the_edges():
    # sim 1 with label 0: 1 - sim clamped to eps = 1e-7 -> -log(1e-7) = 16.1180957
    assert sync_bce_loss(t(1.0), t(0.0)).item() == pytest.approx(16.1180957, rel=1e-6)
    # sim 0 with label 1 -> same
    assert sync_bce_loss(t(0.0), t(1.0)).item() == pytest.approx(16.1180957, rel=1e-6)


def test_sync_bce_accepts_int_labels():
    # label as an integer tensor: sim 0.5 -> -log(0.5) = log 2 either way
    assert sync_bce_loss(t(0.5, 0.5), torch.tensor([1, 0])).item() == pytest.approx(math.log(2), rel=1e-6)


# ---------------------------------------------------------------- multi-way matching (experts)


def test_multiway_hand_value():
    # T = 0.5. Window 1: logits (0.9, 0.1, 0.5) / 0.5 = (1.8, 0.2, 1.0)
    #   -> log(e^1.8 + e^0.2 + e^1.0) - 1.8 = log(6.0496475 + 1.2214028 + 2.7182818) - 1.8 = 0.5015177
    # Window 2: three equal similarities -> log 3 = 1.0986123 (chance among three). Mean: 0.8000650
    loss = multiway_sync_loss(t(0.9, 0.2), torch.tensor([[0.1, 0.5], [0.2, 0.2]]), temperature=0.5)
    assert loss.item() == pytest.approx(0.8000650, rel=1e-6)


def test_multiway_falls_as_the_own_audio_stands_out():
    off_sync = torch.tensor([[0.3, 0.3, 0.3]])
    losses = [multiway_sync_loss(t(s), off_sync, temperature=0.1).item() for s in (0.3, 0.5, 0.9)]
    assert losses[0] == pytest.approx(math.log(4), rel=1e-6)  # no better than any candidate: chance among 4
    assert losses[0] > losses[1] > losses[2] > 0


# ---------------------------------------------------------------- stabilized sync loss, eq. 3


def test_lss_hand_value():
    # x=0.2, y=0.8, d=0.5 -> |x-y| = 0.6, |y-d| = 0.3, ratio = (0.6+eps)/(0.9+eps) ~ 2/3
    # -> L = -log(1 - 2/3) = -log(1/3) = log 3 = 1.0986123 (eps shifts it by ~1e-6)
    assert stabilized_sync_loss(t(0.2), t(0.8), t(0.5)).item() == pytest.approx(1.0986123, rel=1e-5)


def test_lss_zero_when_x_equals_y():
    # x = y = 0.7, d = 0.2 -> ratio = eps / (0.5 + eps) = 2e-6 -> L = -log(1 - 2e-6) ~ 2e-6
    loss = stabilized_sync_loss(t(0.7), t(0.7), t(0.2)).item()
    assert 0.0 <= loss < 1e-5
    assert loss == pytest.approx(2e-6, rel=1e-3)


def test_lss_grows_as_x_moves_away_from_y():
    # y = 0.7, d = 0.2 (|y-d| = 0.5):
    #   x = 0.6: |x-y| = 0.1, ratio 0.1/0.6 = 1/6 -> L = -log(5/6) = 0.1823216
    #   x = 0.4: |x-y| = 0.3, ratio 0.3/0.8 = 3/8 -> L = -log(5/8) = 0.4700036
    #   x = 0.0: |x-y| = 0.7, ratio 0.7/1.2 = 7/12 -> L = -log(5/12) = 0.8754687
    y, d = t(0.7), t(0.2)
    losses = [stabilized_sync_loss(t(x), y, d).item() for x in (0.7, 0.6, 0.4, 0.0)]
    assert losses == sorted(losses) and len(set(losses)) == 4
    assert losses[1:] == pytest.approx([0.1823216, 0.4700036, 0.8754687], rel=1e-5)
    # symmetric in the sign of x - y: x = 0.8 is as far from y as x = 0.6
    assert stabilized_sync_loss(t(0.8), y, d).item() == pytest.approx(losses[1], rel=1e-5)


def test_lss_reference_close_to_gt_is_penalised_more():
    # same |x-y| = 0.1; |y-d| = 0.5 -> -log(5/6) = 0.1823;  |y-d| = 0.1 -> ratio 1/2 -> -log(1/2) = 0.6931
    assert stabilized_sync_loss(t(0.6), t(0.7), t(0.6)).item() == pytest.approx(math.log(2), rel=1e-5)


def test_lss_eps_guard_when_y_equals_d():
    # y = d = 0.5, x = 0.3 -> ratio = (0.2+eps)/(0.2+0+eps) = 1 -> log argument 0, clamped to eps
    # -> L = -log(1e-6) = 13.8155106 (finite)
    for x, dtype in ((0.3, torch.float64), (0.3, torch.float32), (0.5, torch.float64)):  # 0.5: x == y == d
        loss = stabilized_sync_loss(*(torch.tensor([v], dtype=dtype) for v in (x, 0.5, 0.5)))
        assert torch.isfinite(loss)
        assert loss.item() == pytest.approx(-math.log(EPS), rel=1e-5)


def test_lss_batch_mean():
    # samples (0.2, 0.8, 0.5) -> log 3 = 1.0986123 and (0.6, 0.7, 0.2) -> -log(5/6) = 0.1823216; mean 0.6404669
    loss = stabilized_sync_loss(t(0.2, 0.6), t(0.8, 0.7), t(0.5, 0.2))
    assert loss.item() == pytest.approx(0.6404669, rel=1e-5)


def test_lss_gradient_pulls_x_towards_y():
    # x below y: raising x lowers the loss, so dL/dx < 0; x above y: dL/dx > 0
    for x0, sign in ((0.4, -1.0), (0.9, 1.0)):
        x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
        stabilized_sync_loss(x, t(0.7), t(0.2)).backward()
        assert torch.isfinite(x.grad).all()
        assert math.copysign(1.0, x.grad.item()) == sign


# ---------------------------------------------------------------- adaptive triplet loss, eq. 2


def test_lat_hand_value():
    # gt = [0,0], ref = [3,4] -> D(gt,ref) = 5; gen = [0,1] -> D(gen,gt) = 1, D(gen,ref) = |[-3,-3]| = sqrt(18) = 4.2426407
    # L = 1 - 4.2426407/5 + 1 = 1.1514719
    loss = adaptive_triplet_loss(t(0.0, 1.0)[None], t(0.0, 0.0)[None], t(3.0, 4.0)[None])
    assert loss.item() == pytest.approx(1.1514719, rel=1e-6)


def test_lat_floor_at_eps_is_active():
    # gt = [0,0], ref = [0.5,0] -> D(gt,ref) = 0.5; gen = [-0.1,0] -> D(gen,gt) = 0.1, D(gen,ref) = 0.6
    # z = 0.1 - 0.6/0.5 + 1 = -0.1 < 0 -> [z]_+ = max(z, eps) = 1e-6
    gen = torch.tensor([[-0.1, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = adaptive_triplet_loss(gen, t(0.0, 0.0)[None], t(0.5, 0.0)[None])
    assert loss.item() == pytest.approx(EPS, rel=1e-9)
    loss.backward()
    assert torch.count_nonzero(gen.grad) == 0  # floored: no gradient


def test_lat_batch_mean_and_alpha():
    # row 0: the 1.1514719 case; row 1: the floored case (1e-6) -> mean (1.1514719 + 1e-6) / 2 = 0.5757365
    gen = torch.tensor([[0.0, 1.0], [-0.1, 0.0]], dtype=torch.float64)
    gt = torch.zeros(2, 2, dtype=torch.float64)
    ref = torch.tensor([[3.0, 4.0], [0.5, 0.0]], dtype=torch.float64)
    assert adaptive_triplet_loss(gen, gt, ref).item() == pytest.approx(0.5757365, rel=1e-6)
    # alpha = 0.5 on row 0: 1 - 0.8485281 + 0.5 = 0.6514719
    assert adaptive_triplet_loss(gen[:1], gt[:1], ref[:1], alpha=0.5).item() == pytest.approx(0.6514719, rel=1e-6)


def test_lat_reference_equal_to_gt_is_finite():
    # gt = ref = [0,0] -> D(gt,ref) = 0, clamped to eps; gen = [1,0]: z = 1 - 1/1e-6 + 1 < 0 -> eps
    loss = adaptive_triplet_loss(t(1.0, 0.0)[None], t(0.0, 0.0)[None], t(0.0, 0.0)[None])
    assert torch.isfinite(loss) and loss.item() == pytest.approx(EPS)


def test_lat_list_of_layers():
    # layer 1 (B,2), layer 2 (B,1,1,1); flattened + concatenated per sample:
    # gen = [0,1,2], gt = [0,0,0], ref = [3,4,0]
    # D(gen,gt) = sqrt(5) = 2.2360680, D(gen,ref) = sqrt(9+9+4) = sqrt(22) = 4.6904158, D(gt,ref) = 5
    # L = 2.2360680 - 4.6904158/5 + 1 = 2.2979848
    gen = [t(0.0, 1.0)[None], t(2.0).reshape(1, 1, 1, 1)]
    gt = [t(0.0, 0.0)[None], t(0.0).reshape(1, 1, 1, 1)]
    ref = [t(3.0, 4.0)[None], t(0.0).reshape(1, 1, 1, 1)]
    loss = adaptive_triplet_loss(gen, gt, ref)
    assert loss.item() == pytest.approx(2.2979848, rel=1e-6)
    # same as the already-concatenated tensor
    assert loss.item() == pytest.approx(
        adaptive_triplet_loss(t(0.0, 1.0, 2.0)[None], t(0.0, 0.0, 0.0)[None], t(3.0, 4.0, 0.0)[None]).item()
    )


def test_lat_flattens_feature_maps():
    # (B,C,H,W) = (1,1,1,2) maps are flattened to (1,2): same as the 1.1514719 case
    loss = adaptive_triplet_loss(t(0.0, 1.0).reshape(1, 1, 1, 2), torch.zeros(1, 1, 1, 2, dtype=torch.float64),
                                 t(3.0, 4.0).reshape(1, 1, 1, 2))
    assert loss.item() == pytest.approx(1.1514719, rel=1e-6)


# ---------------------------------------------------------------- perceptual, pixel


def test_perceptual_two_layers_weighted():
    # layer 1: |[[1,2],[3,4]] - 0| mean = 10/4 = 2.5; layer 2: |[1,-1] - 0| mean = 1
    # weights (0.5, 2) -> 0.5*2.5 + 2*1 = 3.25
    a = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([1.0, -1.0])]
    b = [torch.zeros(2, 2), torch.zeros(2)]
    assert perceptual_loss(a, b, [0.5, 2.0]).item() == pytest.approx(3.25)


def test_perceptual_needs_one_weight_per_layer():
    with pytest.raises(ValueError):
        perceptual_loss([torch.zeros(1)], [torch.zeros(1)], [1.0, 2.0])


def test_pixel_l1():
    # |[1,2,3] - [1,0,6]| = [0,2,3] -> 5/3
    assert pixel_l1_loss(t(1.0, 2.0, 3.0), t(1.0, 0.0, 6.0)).item() == pytest.approx(5.0 / 3.0)


def test_mouth_region_l1_reads_only_the_region():
    # 4x4 frames, region rows [0.5*4, 1.0*4) = 2..3, columns [0.25*4, 0.75*4) = 1..2: a 2x2 block
    a, b = torch.zeros(1, 4, 4, dtype=torch.float64), torch.zeros(1, 4, 4, dtype=torch.float64)
    a[0, 0, :] = 9.0                     # outside the region (row 0): ignored
    a[0, 2, 1], a[0, 3, 2] = 1.0, -3.0   # inside: |1| + |-3| over 4 pixels
    assert mouth_region_l1_loss(a, b, (0.5, 1.0, 0.25, 0.75)).item() == pytest.approx(1.0)
    # (B, T, C, H, W) frames as the generators give them; fractions round down (0.3 * 4 = 1.2 -> row 1)
    a5 = torch.zeros(2, 5, 3, 4, 4, dtype=torch.float64)
    a5[..., 1:3, 1:3] = 0.5
    assert mouth_region_l1_loss(a5, torch.zeros_like(a5), (0.3, 0.75, 0.3, 0.75)).item() == pytest.approx(0.5)


# ---------------------------------------------------------------- GAN


def test_gan_losses_at_zero_logits():
    # logit 0 -> sigmoid 0.5 -> BCE = log 2 = 0.6931472 for either target
    zeros = torch.zeros(4)
    assert gan_discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert gan_generator_loss(zeros).item() == pytest.approx(math.log(2), rel=1e-6)


def test_gan_losses_known_logits():
    # D: real logit 2 -> BCE(2, 1) = log(1 + e^-2) = 0.1269280; fake logit -1 -> BCE(-1, 0) = log(1 + e^-1) = 0.3132617
    #    sum = 0.4401897
    # G: fake logit -1 -> BCE(-1, 1) = log(1 + e^1) = 1.3132617
    assert gan_discriminator_loss(t(2.0), t(-1.0)).item() == pytest.approx(0.4401897, rel=1e-6)
    assert gan_generator_loss(t(-1.0)).item() == pytest.approx(1.3132617, rel=1e-6)
    # means, then summed: real (2, 2) and fake (-1, -1, -1) of different sizes give the same value
    assert gan_discriminator_loss(t(2.0, 2.0), t(-1.0, -1.0, -1.0)).item() == pytest.approx(0.4401897, rel=1e-6)


def test_mouth_shape_loss_hand_value():
    face_pred, face_target = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])   # mse (1 + 4) / 2 = 2.5
    audio_pred, audio_target = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 3.0]])  # mse (0 + 4) / 2 = 2
    assert float(mouth_shape_loss(face_pred, audio_pred, face_target, audio_target)) == pytest.approx(4.5)
    assert float(mouth_shape_loss(face_target, audio_target, face_target, audio_target)) == 0.0


def test_mouth_shape_match_loss_hand_value_and_gradient():
    fake = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]], requires_grad=True)   # (B=1, T=2, K=2)
    real = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])
    loss = mouth_shape_match_loss(fake, real)   # differences -1, 0, 2, 0: (1 + 0 + 4 + 0) / 4
    assert float(loss) == pytest.approx(1.25)
    loss.backward()
    # d/dfake of mean (fake - real)^2 = 2 (fake - real) / 4: pulls each descriptor towards the real one
    torch.testing.assert_close(fake.grad, torch.tensor([[[-0.5, 0.0], [1.0, 0.0]]]))
    assert float(mouth_shape_match_loss(real, real)) == 0.0
    with pytest.raises(ValueError, match="mouth shapes differ"):
        mouth_shape_match_loss(real, real[:, :1])
