"""The generator loop's loss schedule: pixel loss alone for `pixel_only_steps`, then every switched-on term."""
import torch

from lipforge.train.generator_loop import generator_losses, losses_at_step, lr_at_step, total_loss

ALL_ON = {"pixel": True, "perceptual": True, "gan": True, "sync": True, "triplet": True}


def test_pixel_alone_before_the_switch_then_the_configured_terms():
    configured = dict(ALL_ON, triplet=False)
    assert losses_at_step(configured, 3, 0) == {"pixel": True, "perceptual": False, "gan": False, "sync": False,
                                                "triplet": False}
    assert losses_at_step(configured, 3, 2)["gan"] is False
    assert losses_at_step(configured, 3, 3) == configured   # step 3 is the 4th step: the switch has happened
    assert losses_at_step(configured, 0, 0) == configured   # the paper's schedule: everything from the start


def test_the_pixel_only_phase_has_its_own_learning_rate():
    assert [lr_at_step(1e-4, 1e-3, 2, step) for step in range(4)] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert lr_at_step(1e-4, 1e-3, 0, 0) == 1e-4


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
