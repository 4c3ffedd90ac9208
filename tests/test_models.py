"""Fast shape/contract tests for models/ (small widths; a few seconds on a 2-core CPU)."""
import pytest
import torch
from torch import nn

from lipforge.hashing import file_sha256
from models.avsyncnet import MOTION_GAIN, AVSyncNet, column_band, middle_columns, window_motion
from models.experts import ExpertWithMouthHeads, MouthReader, build_expert, lower_half
from models.stabilized import StabilizedDiscriminator, StabilizedGenerator, audio_map
from models.syncnet import SyncNet
from models.vgg import VGG19Features, load_vgg19
from models.wav2lip import Wav2LipDiscriminator, Wav2LipGenerator

B, T = 2, 5


def small_avsyncnet():
    return AVSyncNet(image_layers=(1, 1, 1, 1), image_width=16, audio_layers=(1, 1, 1, 1), audio_width=16,
                     embed_dim=128)


def inputs(size, b=B, t=T):
    torch.manual_seed(0)
    return torch.randn(b, t, 1, 80, 16), torch.rand(b, t, 3, size, size), torch.rand(b, t, 3, size, size)


@pytest.mark.parametrize("make", [lambda: SyncNet(width=0.125, embed_dim=64), small_avsyncnet],
                         ids=["syncnet", "avsyncnet"])
@pytest.mark.parametrize("size", [64, 96, 128])
def test_expert_embeddings(make, size):
    net = make().eval()
    faces, mels = torch.rand(3, 15, size // 2, size), torch.randn(3, 1, 80, 16)
    with torch.no_grad():
        audio, face = net(faces, mels)
        direct = net.audio_encoder(mels)
    assert audio.shape == face.shape == (3, net.embed_dim)
    for emb in (audio, face):
        assert (emb >= 0).all()
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(direct, net.encode_audio(mels))
    torch.testing.assert_close(face, net.encode_face(faces))
    cos = (audio * face).sum(1)
    assert ((cos >= 0) & (cos <= 1 + 1e-6)).all()


@pytest.mark.parametrize("make", [lambda: SyncNet(width=0.125, embed_dim=64), small_avsyncnet],
                         ids=["syncnet", "avsyncnet"])
def test_mouth_heads_read_the_features_the_embeddings_are_projected_from(make):
    expert = make().eval()
    net = ExpertWithMouthHeads(expert, n_frames=5, n_descriptors=3).eval()
    faces, mels = torch.rand(3, 15, 48, 96), torch.randn(3, 1, 80, 16)
    with torch.no_grad():
        audio, face, audio_shape, face_shape = net(faces, mels)
        plain_audio, plain_face = expert(faces, mels)
        fa, fv = expert.audio_encoder.features(mels), expert.face_encoder.features(faces)
    torch.testing.assert_close(audio, plain_audio)
    torch.testing.assert_close(face, plain_face)
    assert fa.shape == (3, expert.audio_encoder.feature_dim) and fv.shape == (3, expert.face_encoder.feature_dim)
    assert audio_shape.shape == face_shape.shape == (3, 5, 3)
    torch.testing.assert_close(face_shape, net.face_head(fv).view(3, 5, 3))
    assert set(expert.state_dict()) == {k[len("expert."):] for k in net.state_dict() if k.startswith("expert.")}


def test_a_mouth_reader_rebuilt_from_saved_heads_reads_as_the_trained_face_head():
    expert = SyncNet(width=0.125, embed_dim=16).eval()
    net = ExpertWithMouthHeads(expert, n_frames=5, n_descriptors=3).eval()
    torch.nn.init.normal_(net.face_head.weight)
    reader = MouthReader.from_heads(expert.face_encoder, net.heads_state()).eval()
    faces, mels = torch.rand(2, 15, 48, 96), torch.randn(2, 1, 80, 16)
    with torch.no_grad():
        torch.testing.assert_close(reader(faces), net(faces, mels)[3])
    assert reader.face_encoder is expert.face_encoder   # the expert's own encoder, not a copy


def test_window_motion_hand_values():
    # 2 frames of one pixel: RGB (0.2, 0.4, 0.6) then (0.4, 0.4, 0.0); the mean frame is (0.3, 0.4, 0.3)
    faces = torch.tensor([0.2, 0.4, 0.6, 0.4, 0.4, 0.0]).view(1, 6, 1, 1)
    expected = MOTION_GAIN * torch.tensor([-0.1, 0.0, 0.3, 0.1, 0.0, -0.3])
    torch.testing.assert_close(window_motion(faces).flatten(), expected)
    assert window_motion(torch.rand(3, 15, 4, 5)).shape == (3, 15, 4, 5)


def test_a_motion_expert_does_not_see_what_stays_put_over_the_window():
    net = AVSyncNet(image_layers=(1, 1, 1, 1), image_width=8, audio_layers=(1, 1, 1, 1), audio_width=8, embed_dim=32,
                    image_input="motion").eval()
    torch.manual_seed(0)
    faces = torch.rand(2, 15, 24, 48)
    another_face = torch.rand(2, 3, 24, 48).repeat(1, 5, 1, 1)   # the same image added to all 5 frames
    with torch.no_grad():
        torch.testing.assert_close(net.encode_face(faces + another_face), net.encode_face(faces))
        frames_net = AVSyncNet(image_layers=(1, 1, 1, 1), image_width=8, audio_layers=(1, 1, 1, 1), audio_width=8,
                               embed_dim=32).eval()
        assert not torch.allclose(frames_net.encode_face(faces + another_face), frames_net.encode_face(faces))
    with pytest.raises(ValueError, match="image_input must be one of frames, motion"):
        AVSyncNet(image_input="flow")


def test_middle_columns_keep_the_band_of_the_width():
    x = torch.arange(8.0).view(1, 1, 8)
    assert middle_columns(x, (0.25, 0.75)).flatten().tolist() == [2.0, 3.0, 4.0, 5.0]
    assert middle_columns(x, (0.0, 1.0)).flatten().tolist() == list(range(8))
    for bad in ((0.5, 0.5), (-0.1, 0.5), (0.2, 1.2)):
        with pytest.raises(ValueError, match="image_columns must satisfy"):
            column_band(bad)


def test_an_expert_with_image_columns_does_not_see_outside_its_band():
    def expert(**kw):
        torch.manual_seed(0)
        return AVSyncNet(image_layers=(1, 1, 1, 1), image_width=8, audio_layers=(1, 1, 1, 1), audio_width=8,
                         embed_dim=32, **kw).eval()

    faces = torch.rand(2, 15, 24, 48)
    changed = faces.clone()
    changed[..., :12] = torch.rand(2, 15, 24, 12)   # the outer quarters of the width
    changed[..., 36:] = torch.rand(2, 15, 24, 12)
    banded, whole = expert(image_columns=(0.25, 0.75)), expert()
    with torch.no_grad():
        torch.testing.assert_close(banded.encode_face(changed), banded.encode_face(faces))
        assert not torch.allclose(whole.encode_face(changed), whole.encode_face(faces))
        changed[..., 24] = 0.0   # a column inside the band
        assert not torch.allclose(banded.encode_face(changed), banded.encode_face(faces))
    with pytest.raises(ValueError, match="image_columns"):
        expert(image_columns=(0.8, 0.2))


def test_build_expert():
    assert isinstance(build_expert("syncnet", width=0.125, embed_dim=32), SyncNet)
    assert isinstance(build_expert("avsyncnet", image_layers=(1, 1, 1, 1), image_width=8,
                                   audio_layers=(1, 1, 1, 1), audio_width=8, embed_dim=32), AVSyncNet)
    with pytest.raises(ValueError, match="avsyncnet.*syncnet"):
        build_expert("resnet")


def test_the_train_expert_stage_builds_each_expert_from_every_field_of_its_params_section():
    from lipforge.params import Params
    from stages.train_expert import arch_kwargs

    params = Params.model_validate({"train_expert": {"avsyncnet": {"image_layers": [2, 1, 1, 1], "image_width": 8,
                                                                   "image_input": "motion"}}})
    kwargs = arch_kwargs(params, "avsyncnet")
    assert kwargs == {"image_layers": (2, 1, 1, 1), "image_width": 8, "audio_layers": (1, 1, 1, 1),
                      "audio_width": 16, "embed_dim": 128, "image_input": "motion", "image_columns": (0.0, 1.0)}
    net = build_expert("avsyncnet", **kwargs)
    assert net.face_encoder.image_input == "motion" and len(net.face_encoder.stages[0]) == 2
    assert isinstance(build_expert("syncnet", **arch_kwargs(params, "syncnet")), SyncNet)


def test_lower_half_is_frame_major():
    H, W = 4, 3
    frames = torch.zeros(1, 2, 3, H, W)
    for t in range(2):
        for c in range(3):
            frames[0, t, c] = 10 * t + c
    frames[..., : H // 2, :] = -1  # upper halves must be dropped
    out = lower_half(frames)
    assert out.shape == (1, 6, H // 2, W)
    assert out[0, :, 0, 0].tolist() == [0, 1, 2, 10, 11, 12]


@pytest.mark.parametrize("size", [96, 128])
def test_wav2lip_generator(size):
    gen = Wav2LipGenerator(width=0.125, img_size=size)
    out = gen(*inputs(size, b=1, t=2))
    assert out.shape == (1, 2, 3, size, size)
    assert out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in gen.parameters())


def test_wav2lip_generator_rejects_size():
    with pytest.raises(ValueError, match="img_size"):
        Wav2LipGenerator(width=0.125, img_size=100)


def test_discriminators():
    frames = torch.rand(4, 3, 96, 96)
    assert Wav2LipDiscriminator(width=0.125)(frames).shape == (4,)
    assert StabilizedDiscriminator(width=8, n_layers=5)(frames).shape == (4,)
    assert StabilizedDiscriminator(width=8, n_layers=5)(torch.rand(4, 3, 128, 128)).shape == (4,)


def frozen_generator(size=96):
    expert = small_avsyncnet()
    return StabilizedGenerator(expert.audio_encoder, audio_dim=128, width=8, n_blocks=5, img_size=size)


@pytest.mark.parametrize("size", [96, 128])
def test_stabilized_generator_shapes(size):
    out = frozen_generator(size)(*inputs(size, b=1, t=2))
    assert out.shape == (1, 2, 3, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_audio_map_hand_values():
    features = torch.tensor([[1.0, -2.0]])
    out = audio_map(features, 3, 2, "lower_half")  # rows 0 (= 3 // 2 rows) zero, rows 1-2 the vector
    expected = torch.tensor([[[[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]],
                              [[0.0, 0.0], [-2.0, -2.0], [-2.0, -2.0]]]])
    torch.testing.assert_close(out, expected)
    assert audio_map(features, 4, 1, "lower_half")[0, 0, :, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(audio_map(features, 3, 2, "all"), features[:, :, None, None].expand(1, 2, 3, 2))


def test_stabilized_generator_audio_skip():
    expert = small_avsyncnet()
    gen = StabilizedGenerator(expert.audio_encoder, audio_dim=128, width=8, n_blocks=5, img_size=96, audio_skip=4)
    assert gen.audio_skip.out_features == 4
    # every FD block after the first, and the output block, takes 4 more channels than without audio_skip
    plain = StabilizedGenerator(small_avsyncnet().audio_encoder, audio_dim=128, width=8, n_blocks=5, img_size=96)
    widths = [block.up[0].in_channels for block in gen.decoder]
    assert widths[0] == plain.decoder[0].up[0].in_channels
    assert [w - p for w, p in zip(widths[1:], (b.up[0].in_channels for b in plain.decoder[1:]))] == [4] * 4
    assert gen.output_block[0][0].in_channels == plain.output_block[0][0].in_channels + 4
    out = gen(*inputs(96, b=1, t=2))
    assert out.shape == (1, 2, 3, 96, 96)
    assert plain.audio_skip is None
    with pytest.raises(ValueError, match="audio_skip"):
        StabilizedGenerator(expert.audio_encoder, audio_dim=128, audio_skip=-1)
    with pytest.raises(ValueError, match="audio_skip_rows"):
        StabilizedGenerator(expert.audio_encoder, audio_dim=128, audio_skip=4, audio_skip_rows="top")


def test_stabilized_generator_rejects_size():
    with pytest.raises(ValueError, match="divisible"):
        frozen_generator(100)


class TinyScaleAudio(nn.Module):
    """An audio encoder whose embeddings are as small as a trained expert's (~0.02 per channel)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(80 * 16, 128)

    def forward(self, mels):
        return 0.02 * torch.tanh(self.proj(mels.flatten(1)))


def test_stabilized_generator_hears_small_audio_embeddings():
    torch.manual_seed(0)
    gen = StabilizedGenerator(TinyScaleAudio(), audio_dim=128, width=8, n_blocks=5, img_size=96).train()
    mels, pose, ref = inputs(96, b=4, t=5)
    features = gen.audio_features(mels.flatten(0, 1))
    torch.testing.assert_close(features.std(0, unbiased=False), torch.ones(128), atol=1e-3, rtol=0)  # standardised
    other = torch.randn_like(mels)
    changed = (gen(mels, pose, ref) - gen(other, pose, ref)).abs().mean()
    assert changed > 3e-3  # 0.011 here; without the standardisation 4e-4


def test_stabilized_audio_encoder_stays_frozen():
    gen = frozen_generator()
    audio = gen.audio_encoder
    before = {k: v.clone() for k, v in audio.state_dict().items()}
    trainable = gen.trainable_parameters()
    assert {id(p) for p in trainable}.isdisjoint(id(p) for p in audio.parameters())
    assert len(trainable) == sum(1 for p in gen.parameters()) - sum(1 for p in audio.parameters())

    gen.train()
    assert gen.training and gen.pose_encoder.training
    assert not any(m.training for m in audio.modules())
    opt = torch.optim.Adam(trainable, lr=1e-2)
    gen(*inputs(96, b=1, t=2)).mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in audio.parameters())
    assert all(p.grad is not None for p in trainable)
    opt.step()
    for k, v in audio.state_dict().items():  # weights and BN running statistics alike
        torch.testing.assert_close(v, before[k], msg=k)


def test_vgg_loads_torchvision_style_state_dict(tmp_path):
    layers = ("relu1_1", "relu2_1")
    torch.manual_seed(1)
    src = VGG19Features(layers)
    assert len(src.features) == 7  # built only up to relu2_1
    state = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    state["classifier.0.weight"] = torch.randn(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)

    vgg, prov = load_vgg19(layers, path, seed=0)
    assert prov == {"network": "vgg19", "weights": "imagenet", "file": str(path), "sha256": file_sha256(path)}
    for k, v in src.features.state_dict().items():
        torch.testing.assert_close(vgg.features.state_dict()[k], v)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    feats = vgg(x)
    assert [f.shape for f in feats] == [(2, 64, 32, 32), (2, 128, 16, 16)]
    feats[1].sum().backward()  # gradients reach the input for the perceptual loss
    assert x.grad is not None

    state["features.2.weight"] = torch.randn(64, 32, 3, 3)
    torch.save(state, path)
    with pytest.raises(ValueError, match="vgg19.pth"):
        load_vgg19(layers, path, seed=0)


def test_vgg_random_init_is_deterministic(tmp_path):
    layers = ("relu1_1", "relu3_1")
    a, prov = load_vgg19(layers, tmp_path / "missing.pth", seed=3)
    b, _ = load_vgg19(layers, None, seed=3)
    c, _ = load_vgg19(layers, None, seed=4)
    assert prov["network"] == "vgg19-random-init" and prov["weights"] is None and prov["seed"] == 3
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
        if k.endswith("weight"):
            assert not torch.equal(va, vc)
        else:
            assert not va.any()
