"""The generator loop's loss schedule: pixel loss alone for `pixel_only_steps`, then every switched-on term."""
import pytest
import torch
from torch import nn

from lipforge.train.generator_loop import generator_losses, generator_step, losses_at_step, total_loss
from models.experts import build_expert, lower_half
from models.stabilized import StabilizedDiscriminator

ALL_ON = {"pixel": True, "perceptual": True, "gan": True, "sync": True, "triplet": True, "mouth_pixel": False}


def test_pixel_alone_before_the_switch_then_the_configured_terms():
    configured = dict(ALL_ON, triplet=False)
    assert losses_at_step(configured, 3, 0) == {"pixel": True, "perceptual": False, "gan": False, "sync": False,
                                                "triplet": False, "mouth_pixel": False}
    assert losses_at_step(configured, 3, 2)["gan"] is False
    assert losses_at_step(configured, 3, 3) == configured   # step 3 is the 4th step: the switch has happened
    assert losses_at_step(configured, 0, 0) == configured   # the paper's schedule: everything from the start


def test_the_mouth_pixel_term_belongs_to_the_pixel_only_phase_when_switched_on():
    configured = dict(ALL_ON, mouth_pixel=True)
    assert losses_at_step(configured, 3, 0) == {"pixel": True, "perceptual": False, "gan": False, "sync": False,
                                                "triplet": False, "mouth_pixel": True}
    assert losses_at_step(dict(ALL_ON, mouth_pixel=False), 3, 0)["mouth_pixel"] is False
    cfg = {"method": "stabilized", "losses": configured, "mouth_region": [0.5, 1.0, 0.0, 1.0],
           "weights": {"pixel": 10.0, "mouth_pixel": 5.0}}
    fake, gt = torch.zeros((1, 5, 3, 4, 4)), torch.zeros((1, 5, 3, 4, 4))
    fake[..., 2:, :] = 0.5   # the lower half (the region) is off by 0.5, the upper half is exact
    terms = generator_losses(cfg, fake, {"gt": gt, "ref": gt}, None, None, None, losses_at_step(configured, 1, 0))
    assert set(terms) == {"pixel", "mouth_pixel"}
    assert float(terms["mouth_pixel"]) == 0.5 and float(terms["pixel"]) == 0.25
    assert float(total_loss(cfg, terms)) == 10.0 * 0.25 + 5.0 * 0.5
    # wav2lip's recipe has no such term
    assert "mouth_pixel" not in generator_losses(dict(cfg, method="wav2lip"), fake, {"gt": gt, "ref": gt}, None,
                                                 None, None, losses_at_step(configured, 1, 0))


def test_only_the_terms_in_force_are_computed_and_weighted():
    cfg = {"method": "stabilized", "losses": ALL_ON,
           "weights": {"gan": 1.0, "pixel": 10.0, "perceptual": 1.0, "sync": 2.0, "triplet": 0.5}}
    fake, gt = torch.full((1, 5, 3, 4, 4), 0.75), torch.full((1, 5, 3, 4, 4), 0.5)
    # expert, vgg and discriminator are never touched while only the pixel loss is in force
    terms = generator_losses(cfg, fake, {"gt": gt, "ref": gt}, None, None, None, losses_at_step(ALL_ON, 1, 0))
    assert set(terms) == {"pixel"}
    assert float(total_loss(cfg, terms)) == 10.0 * 0.25
    w2l = {"method": "wav2lip", "wav2lip_weights": {"sync": 0.03, "gan": 0.07}}
    assert float(total_loss(w2l, terms)) == 0.25   # (1 - s - g) applies only with the sync and GAN terms present


def test_the_target_and_reference_vgg_features_of_one_pass_are_those_of_two():
    from lipforge.train.generator_loop import constant_vgg_features
    from models.vgg import load_vgg19

    vgg = load_vgg19(["relu1_1", "relu2_1"], None, seed=0)[0]
    gt, ref = torch.rand((3, 3, 16, 16), generator=torch.Generator().manual_seed(1)), torch.rand((3, 3, 16, 16))
    f_gt, f_ref = constant_vgg_features("fp32", vgg, gt, ref)
    for merged, alone in zip(f_gt + f_ref, vgg(gt) + vgg(ref)):
        assert merged.shape == alone.shape and torch.allclose(merged, alone, atol=1e-6)
    assert not torch.equal(f_gt[1], f_ref[1])   # the halves are not swapped or shared
    f_only, none = constant_vgg_features("fp32", vgg, gt, None)   # perceptual without the triplet term
    assert none is None and all(torch.equal(a, b) for a, b in zip(f_only, vgg(gt)))


class AddBias(nn.Module):
    """A one-parameter stand-in generator: the pose frames plus a learned offset."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, mels, pose, ref):
        return pose + self.bias


def test_generator_step_trains_the_discriminator_only_after_the_pixel_only_phase():
    torch.manual_seed(0)
    cfg = {"method": "silent", "losses": {"pixel": True, "perceptual": False, "gan": True, "sync": False,
                                          "triplet": False, "mouth_pixel": False},
           "weights": {"gan": 1.0, "pixel": 10.0}, "optim": {"lr": 1e-4}, "pixel_only_steps": 1, "pixel_only_lr": 1e-2,
           "precision": "fp32"}
    gen, disc = AddBias(), StabilizedDiscriminator(width=2, n_layers=3)
    opt_g, opt_d = torch.optim.Adam(gen.parameters(), lr=0.5), torch.optim.Adam(disc.parameters(), lr=0.5)
    batch = {"gt": torch.full((2, 5, 3, 8, 8), 0.5), "pose": torch.zeros(2, 5, 3, 8, 8), "mels": None, "ref": None}
    disc_before = [p.detach().clone() for p in disc.parameters()]

    terms, loss, d_loss = generator_step(cfg, 0, batch, gen, disc, opt_g, opt_d, None, None)
    assert set(terms) == {"pixel"} and d_loss is None
    assert loss.item() == 10.0 * 0.5
    # Adam's first step moves every parameter by its lr, here the pixel-only phase's, towards the target 0.5
    assert abs(gen.bias.item() - 1e-2) < 1e-6
    assert all(torch.equal(a, b) for a, b in zip(disc_before, disc.parameters()))

    terms, loss, d_loss = generator_step(cfg, 1, batch, gen, disc, opt_g, opt_d, None, None)
    assert set(terms) == {"pixel", "gan"} and d_loss is not None
    assert [g["lr"] for g in opt_g.param_groups + opt_d.param_groups] == [1e-4, 1e-4]
    assert not all(torch.equal(a, b) for a, b in zip(disc_before, disc.parameters()))


def test_the_build_record_carries_audio_skip_to_the_model():
    from lipforge.train.generator_loop import build_generator, generator_build

    expert_build = {"arch": "avsyncnet", "kwargs": {"image_layers": [1, 1, 1, 1], "image_width": 8,
                                                    "audio_layers": [1, 1, 1, 1], "audio_width": 8, "embed_dim": 32}}
    arch = {"stabilized_width": 4, "stabilized_blocks": 3, "wav2lip_width": 0.125}
    build = generator_build("stabilized", arch, 32, expert_build, audio_skip=3, audio_skip_rows="all")
    gen = build_generator(build, build_expert(expert_build["arch"], **expert_build["kwargs"]))
    assert gen.audio_skip.out_features == 3 and gen.audio_skip_rows == "all"
    assert build_generator(generator_build("stabilized", arch, 32, expert_build)).audio_skip is None
    assert "audio_skip" not in generator_build("wav2lip", arch, 32, None)["kwargs"]


def test_a_generator_that_hears_the_experts_features_takes_their_width():
    from lipforge.train.generator_loop import audio_offset, build_generator, generator_build

    expert_build = {"arch": "avsyncnet", "kwargs": {"image_layers": [1, 1, 1, 1], "image_width": 8,
                                                    "audio_layers": [1, 1, 1, 1], "audio_width": 8, "embed_dim": 32}}
    arch = {"stabilized_width": 4, "stabilized_blocks": 3}
    expert = build_expert(expert_build["arch"], **expert_build["kwargs"]).eval()
    build = generator_build("stabilized", arch, 32, expert_build, -2, audio_input="features")
    gen = build_generator(build, expert).eval()
    assert audio_offset(build) == -2 and audio_offset({"method": "wav2lip"}) == 0  # files from before the record
    mels = torch.randn(6, 1, 80, 16)
    width = expert.audio_encoder.feature_dim    # attentive statistics pooling: 2 x channels x mel bands
    assert width == 2 * 64 * 10 and expert.embed_dim == 32
    assert gen.audio_dim == width and gen.audio_norm.num_features == width
    # what it hears: the encoder's pooled features, standardised (the norm's running stats are 0 / 1 here)
    torch.testing.assert_close(gen.audio_features(mels), expert.audio_encoder.features(mels), rtol=1e-4, atol=1e-4)
    out = gen(mels.view(2, 3, 1, 80, 16), torch.rand(2, 3, 3, 32, 32), torch.rand(2, 3, 3, 32, 32))
    assert out.shape == (2, 3, 3, 32, 32)
    with pytest.raises(ValueError, match="audio_input"):
        build_generator(generator_build("stabilized", arch, 32, expert_build, audio_input="mfcc"), expert)


def test_generator_config_gives_g_l_its_audio_options_and_g_s_the_papers(tmp_path):
    from lipforge.params import Params
    from lipforge.train.artifacts import save_model
    from lipforge.train.generator_config import generator_config

    expert_build = {"arch": "syncnet", "kwargs": {"width": 0.125, "embed_dim": 16}}
    expert_path = tmp_path / "expert.pt"
    save_model(expert_path, "expert", expert_build, {}, {})
    params = Params.model_validate({"train_generator": {"audio_skip_channels": 8, "audio_skip_rows": "all"}})
    args = (expert_path, tmp_path / "face_crop", tmp_path / "mel.parquet")
    g_s = generator_config(params, params.silent_refs, "silent", *args, seed_offset=101)
    g_l = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=202)
    assert "audio_skip" not in g_s["build"]["kwargs"]  # G_S: the model's default, the paper's bottleneck-only audio
    wav2lip = generator_config(params, params.train_generator, "wav2lip", *args, seed_offset=202)
    assert "audio_skip" not in wav2lip["build"]["kwargs"]
    assert (g_l["build"]["kwargs"]["audio_skip"], g_l["build"]["kwargs"]["audio_skip_rows"]) == (8, "all")
    # lipforge's defaults for train_generator: the expert's features, windows centred on each frame; G_S the paper's
    assert g_l["build"]["kwargs"]["audio_input"] == "features" and "audio_input" not in g_s["build"]["kwargs"]
    assert (g_l["build"]["audio_offset"], wav2lip["build"]["audio_offset"], g_s["build"]["audio_offset"]) == (-2, -2, 0)
    params = Params.model_validate({"train_generator": {"audio_offset": -1, "audio_input": "embedding"}})
    g_l = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=202)
    assert (g_l["build"]["audio_offset"], g_l["build"]["kwargs"]["audio_input"]) == (-1, "embedding")
    # each generator has its own precision setting; the workers resolve `auto` (on_device)
    assert (g_s["precision"], g_l["precision"], wav2lip["precision"]) == ("fp32", "auto", "fp32")
    params = Params.model_validate({"train_generator": {"precision": "fp32", "wav2lip_precision": "bf16"}})
    assert generator_config(params, params.train_generator, "stabilized", *args, seed_offset=202)["precision"] == "fp32"
    assert generator_config(params, params.train_generator, "wav2lip", *args, seed_offset=202)["precision"] == "bf16"


def test_on_device_resolves_the_precision_setting_and_keeps_the_rest(monkeypatch):
    from lipforge.train.generator_loop import on_device

    config = {"precision": "auto", "seed": 3}
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert on_device(config, torch.device("cpu")) == {"precision": "fp32", "seed": 3}
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert on_device(config, torch.device("cpu")) == {"precision": "bf16", "seed": 3}
    assert config["precision"] == "auto"   # the run's config (its checkpoint key) keeps the setting


def _tiny_generator_run(tmp_path):
    """Params of a tiny G_L beside a saved untrained SyncNet expert; returns (params, generator_config args)."""
    from lipforge.params import Params
    from lipforge.train.artifacts import save_model

    expert_build = {"arch": "syncnet", "kwargs": {"width": 0.125, "embed_dim": 16}}
    expert_path = tmp_path / "expert.pt"
    save_model(expert_path, "expert", expert_build, build_expert("syncnet", **expert_build["kwargs"]).state_dict(), {})
    params = Params.model_validate({"face_crop": {"img_size": 64}, "perceptual": {"layers": ["relu1_1"],
                                                                                  "layer_weights": [1.0]},
                                    "generator": {"stabilized_width": 4, "stabilized_blocks": 3,
                                                  "wav2lip_width": 0.125, "discriminator_width": 4},
                                    "train_generator": {"optim": {"lr": 3e-4, "betas": [0.5, 0.9]},
                                                        "ema_decay": 0.9}})
    return params, (expert_path, tmp_path / "face_crop", tmp_path / "mel.parquet")


def test_training_parts_share_the_experts_audio_encoder_and_load_only_what_a_term_uses(tmp_path):
    from lipforge.train.generator_config import generator_config
    from lipforge.train.generator_loop import training_parts

    params, args = _tiny_generator_run(tmp_path)
    expert_path = args[0]
    config = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=0)
    parts = training_parts(config, torch.device("cpu"))
    assert parts.gen.audio_encoder is parts.expert.audio_encoder   # frozen, and not a fresh copy
    assert parts.vgg is not None and parts.ema is not None
    assert parts.opt_g.param_groups[0]["lr"] == 3e-4 and parts.opt_g.param_groups[0]["betas"] == (0.5, 0.9)
    trained = {id(p) for group in parts.opt_g.param_groups for p in group["params"]}
    assert not any(id(p) in trained for p in parts.expert.parameters())
    # initialised from the run's seed, whatever the global torch RNG did before
    first = parts.gen.state_dict()
    torch.rand(7)
    again = training_parts(config, torch.device("cpu")).gen.state_dict()
    other = training_parts(dict(config, seed=config["seed"] + 1), torch.device("cpu")).gen.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)

    no_vgg = dict(config, losses=dict(config["losses"], perceptual=False, triplet=False), ema_decay=None)
    parts = training_parts(no_vgg, torch.device("cpu"))
    assert parts.vgg is None and parts.ema is None
    # wav2lip without its sync term never opens the expert file
    wav2lip = generator_config(params, params.train_generator, "wav2lip", *args, seed_offset=0)
    expert_path.unlink()
    parts = training_parts(dict(wav2lip, losses=dict(wav2lip["losses"], sync=False)), torch.device("cpu"))
    assert parts.expert is None and parts.vgg is None


def test_the_mouth_shape_term_compares_what_the_experts_mouth_reader_reads(tmp_path):
    from lipforge.stage import StageError
    from lipforge.train.artifacts import save_model
    from lipforge.train.generator_config import generator_config
    from lipforge.train.generator_loop import training_parts
    from models.experts import ExpertWithMouthHeads

    params, args = _tiny_generator_run(tmp_path)
    config = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=0)
    config["losses"] = dict(config["losses"], mouth_shape=True)
    # the expert of _tiny_generator_run trained without heads: the term cannot read mouths, and says what to do
    with pytest.raises(StageError, match="no mouth-shape heads.*mouth_shape_weight"):
        training_parts(config, torch.device("cpu"))
    blob = torch.load(args[0], weights_only=False)
    expert = build_expert(blob["build"]["arch"], **blob["build"]["kwargs"])
    expert.load_state_dict(blob["state_dict"])
    heads = ExpertWithMouthHeads(expert, 5, 3)
    torch.nn.init.normal_(heads.face_head.weight)
    save_model(args[0], "expert", blob["build"], blob["state_dict"], {}, mouth_heads=heads.heads_state())
    parts = training_parts(config, torch.device("cpu"))
    assert parts.mouth_reader.face_encoder is parts.expert.face_encoder
    assert not any(p.requires_grad for p in parts.mouth_reader.parameters())

    gt = torch.rand(2, 5, 3, 64, 64)
    fake = (gt + 0.3 * torch.randn_like(gt)).requires_grad_(True)
    on = {name: name == "mouth_shape" for name in config["losses"]}
    terms = generator_losses(config, fake, {"gt": gt, "ref": gt}, parts.expert, None, None, on, parts.mouth_reader)
    assert set(terms) == {"mouth_shape"}
    with torch.no_grad():
        expected = ((parts.mouth_reader(lower_half(fake)) - parts.mouth_reader(lower_half(gt))) ** 2).mean()
    torch.testing.assert_close(terms["mouth_shape"], expected)
    assert float(terms["mouth_shape"].detach()) > 0
    terms["mouth_shape"].backward()
    assert fake.grad[..., 32:, :].abs().sum() > 0 and fake.grad[..., :32, :].abs().sum() == 0   # lower half only
    same = generator_losses(config, gt, {"gt": gt, "ref": gt}, parts.expert, None, None, on, parts.mouth_reader)
    assert float(same["mouth_shape"]) == 0.0
    # G_S and wav2lip never compute it
    for method in ("silent", "wav2lip"):
        assert "mouth_shape" not in generator_losses(dict(config, method=method), fake, {"gt": gt, "ref": gt}, None,
                                                     None, None, on, parts.mouth_reader)


def test_a_checkpoint_restores_every_part_of_a_run(tmp_path):
    from lipforge.train.generator_config import generator_config
    from lipforge.train.generator_loop import checkpoint_state, restore_parts, training_parts
    from lipforge.train.weight_average import update_average

    params, args = _tiny_generator_run(tmp_path)
    config = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=0)
    parts = training_parts(config, torch.device("cpu"))
    # one optimiser step on each network, so their Adam moments and the average are no longer fresh
    for net, opt in ((parts.gen, parts.opt_g), (parts.disc, parts.opt_d)):
        loss = sum(p.float().square().sum() for p in net.parameters() if p.requires_grad)
        opt.zero_grad()
        loss.backward()
        opt.step()
    update_average(parts.ema, parts.gen)
    who = [{"from_step": 0, "workers": [{"rank": 0, "host": "h", "machine": {"arch": "x86_64"}}]}]
    state = checkpoint_state(parts, 7, [{"step": 7}], 1.5, who)
    assert (state["step"], state["history"], state["train_seconds"]) == (7, [{"step": 7}], 1.5)
    assert state["training_attempts"] == who

    fresh = training_parts(dict(config, seed=config["seed"] + 1), torch.device("cpu"))
    restore_parts(fresh, state)
    again = checkpoint_state(fresh, 7, [], 0.0, [])
    for key in ("generator", "generator_ema", "discriminator"):
        assert all(torch.equal(state[key][k], again[key][k]) for k in state[key]), key
    for key in ("opt_g", "opt_d"):
        saved, restored = state[key]["state"], again[key]["state"]
        assert saved and saved.keys() == restored.keys()
        assert all(torch.equal(saved[i]["exp_avg"], restored[i]["exp_avg"]) for i in saved), key


def test_load_generator_returns_the_network_with_how_it_hears(tmp_path):
    from lipforge.train.artifacts import save_model
    from lipforge.train.generator_config import generator_config
    from lipforge.train.generator_loop import build_generator, load_generator

    params, args = _tiny_generator_run(tmp_path)
    build = generator_config(params, params.train_generator, "stabilized", *args, seed_offset=0)["build"]
    torch.manual_seed(0)
    trained = build_generator(build).eval()
    save_model(tmp_path / "generator.pt", "generator", build, trained.state_dict(), {})
    loaded = load_generator(tmp_path / "generator.pt")
    assert (loaded.method, loaded.audio_offset, loaded.net.training) == ("stabilized", -2, False)
    mels, pose, ref = torch.randn(1, 5, 1, 80, 16), torch.rand(1, 5, 3, 64, 64), torch.rand(1, 5, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(mels, pose, ref), trained(mels, pose, ref))


def test_a_bf16_step_of_the_tiny_g_l_has_finite_float32_losses_and_gradients_and_differs_from_fp32(tmp_path):
    from lipforge.params import Params
    from lipforge.train.generator_config import generator_config
    from lipforge.train.generator_loop import generator_step, training_parts

    params, args = _tiny_generator_run(tmp_path)
    torch.manual_seed(0)
    batch = {"gt": torch.rand(2, 5, 3, 64, 64), "ref": torch.rand(2, 5, 3, 64, 64), "mels": torch.randn(2, 5, 1, 80, 16),
             "sync_mel": torch.randn(2, 1, 80, 16)}
    batch["pose"] = batch["gt"].clone()
    batch["pose"][..., 32:, :] = 0
    results = {}
    for precision in ("fp32", "bf16"):
        tuned = Params.model_validate({**params.model_dump(), "train_generator": {
            **params.train_generator.model_dump(), "precision": precision, "pixel_only_steps": 0}})
        config = generator_config(tuned, tuned.train_generator, "stabilized", *args, seed_offset=0)
        assert config["precision"] == precision
        parts = training_parts(config, torch.device("cpu"))
        terms, loss, d_loss = generator_step(config, 0, batch, parts.gen, parts.disc, parts.opt_g, parts.opt_d,
                                             parts.expert, parts.vgg)
        assert set(terms) >= {"pixel", "perceptual", "sync", "triplet", "gan"}
        assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(d_loss)
        grads = [p.grad for p in parts.gen.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
        results[precision] = {k: v.item() for k, v in terms.items()}
    # the same initial weights and batch: close, not equal (the generator and VGG ran in bfloat16)
    assert results["fp32"]["pixel"] != results["bf16"]["pixel"]
    assert abs(results["fp32"]["pixel"] - results["bf16"]["pixel"]) < 0.05 * results["fp32"]["pixel"]
