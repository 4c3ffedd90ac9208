"""The expert loop's pieces: mouth-shape targets, the training step's multi-way term and the saved expert."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lipforge.face.clipmeta import ARRAYS, save_npz_deterministic
from lipforge.face.framestore import FrameStore, write_frames
from lipforge.stage import StageError
from lipforge.train.data import Clip
from lipforge.train.augment import WindowAugment
from lipforge.train.expert_loop import (build_trainable, expert_from_checkpoint, mouth_heads_from_checkpoint,
                                       mouth_shape_targets, train_step)
from models.experts import ExpertWithMouthHeads

SMALL = {"arch": "syncnet", "arch_kwargs": {"width": 0.125, "embed_dim": 16}}


def test_mouth_shape_targets_are_standardized_over_all_training_frames():
    clips = [SimpleNamespace(clip_id="a", mouth_shapes=np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 4.0]], np.float32)),
             SimpleNamespace(clip_id="b", mouth_shapes=np.array([[4.0, 1.0, 6.0]], np.float32))]
    targets = mouth_shape_targets(clips)
    # column 0: mean 2, std sqrt(8/3); column 1 is constant: std floored at 1e-6, so all zeros
    np.testing.assert_allclose(targets["a"][:, 0], [-2 / np.sqrt(8 / 3), 0.0], rtol=1e-6)
    np.testing.assert_allclose(targets["b"][:, 0], [2 / np.sqrt(8 / 3)], rtol=1e-6)
    np.testing.assert_allclose(targets["a"][:, 1], [0.0, 0.0])
    pooled = np.concatenate([targets["a"], targets["b"]])
    np.testing.assert_allclose(pooled[:, [0, 2]].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(pooled[:, [0, 2]].std(axis=0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape_weight", [0.0, 1.0])
def test_the_saved_expert_is_the_trained_one_without_the_mouth_heads(shape_weight):
    config = {**SMALL, "mouth_shape_weight": shape_weight}
    torch.manual_seed(0)
    net = build_trainable(config)
    assert isinstance(net, ExpertWithMouthHeads) == (shape_weight > 0)
    expert = expert_from_checkpoint(config, {"net": net.state_dict()})
    assert not isinstance(expert, ExpertWithMouthHeads)
    trained = net.expert if shape_weight > 0 else net
    assert expert.state_dict().keys() == trained.state_dict().keys()
    for key, value in trained.state_dict().items():
        assert torch.equal(expert.state_dict()[key], value), key


def _step_batch(rng: np.random.Generator, candidates: int, shapes: bool) -> dict:
    """4 pairs of 96x96 windows (2 in sync), mouth-shape targets when `shapes`, and `candidates` off-sync mels per
    in-sync pair."""
    batch = {"frames": rng.random((4, 5, 3, 96, 96), dtype=np.float32),
             "mels": rng.standard_normal((4, 1, 80, 16)).astype(np.float32),
             "label": np.array([1, 0, 1, 0], np.float32)}
    if shapes:
        batch.update(video_mouth=rng.standard_normal((4, 5, 3)).astype(np.float32),
                     audio_mouth=rng.standard_normal((4, 5, 3)).astype(np.float32))
    if candidates:
        batch["candidate_mels"] = rng.standard_normal((2, candidates, 1, 80, 16)).astype(np.float32)
    return batch


@pytest.mark.parametrize("shape_weight", [0.0, 1.0])
def test_the_multiway_term_trains_the_expert_and_leaves_the_reported_bce_that_of_the_pairs(shape_weight):
    config = {**SMALL, "mouth_shape_weight": shape_weight}
    batch = _step_batch(np.random.default_rng(0), candidates=3, shapes=shape_weight > 0)
    no_augment = WindowAugment(flip=False, max_shift=0, max_zoom=0, brightness=0, colour=0)
    updated = []
    for weight in (0.0, 5.0):
        torch.manual_seed(0)
        net = build_trainable(config)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        losses = train_step(net, optimizer, batch, torch.device("cpu"), no_augment, np.random.default_rng(1),
                            shape_weight, multiway_weight=weight, multiway_temperature=0.1)
        bce, accuracy, _, multiway = losses
        assert np.isfinite(bce) and 0 <= accuracy <= 1
        assert np.isfinite(multiway) and multiway > 0
        updated.append((losses, {k: v.clone() for k, v in net.state_dict().items()}))
    # The forward pass, and so every reported loss, is the same; only the update differs.
    assert updated[0][0] == pytest.approx(updated[1][0])
    moved = [k for k, v in updated[0][1].items() if v.is_floating_point() and not torch.equal(v, updated[1][1][k])]
    assert any(k.startswith(("audio", "expert.audio")) for k in moved)  # the term reaches both encoders
    assert any(k.startswith(("face", "expert.face")) for k in moved)


def test_the_mouth_heads_are_saved_only_when_the_expert_trained_with_them():
    config = {**SMALL, "mouth_shape_weight": 1.0}
    net = build_trainable(config)
    heads = mouth_heads_from_checkpoint(config, {"net": net.state_dict()})
    assert (heads["n_frames"], heads["n_descriptors"]) == (5, 3)
    for key, value in net.face_head.state_dict().items():
        assert torch.equal(heads["face_head"][key], value), key
    plain = {**SMALL, "mouth_shape_weight": 0.0}
    assert mouth_heads_from_checkpoint(plain, {"net": build_trainable(plain).state_dict()}) is None


def test_bad_landmarks_name_the_clip_and_its_file(tmp_path):
    write_frames(tmp_path / "a.npy", np.zeros((6, 8, 8, 3), np.uint8))
    meta = {name: np.zeros(1) for name in ARRAYS}
    meta["landmarks_crop"] = np.zeros((6, 68, 2), np.float32)  # every point at the origin: mouth corners coincide
    meta["info"] = np.array("{}")
    save_npz_deterministic(tmp_path / "a.npz", meta)
    clip = Clip("spk/a", FrameStore.open(tmp_path / "a.npy"), np.zeros((80, 40), np.float32), 2, tmp_path / "a.npz")
    with pytest.raises(StageError, match=r"clip spk/a: bad landmarks in .*a\.npz: .*coincident mouth corners"):
        clip.mouth_shapes
