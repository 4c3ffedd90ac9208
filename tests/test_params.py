"""The params schema rejects bad values with one line that names the key."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lipforge.params import Params, ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[1]


def test_shipped_params_yaml_is_valid_and_matches_defaults():
    shipped = load_params(REPO / "params.yaml")
    assert shipped == Params(), "params.yaml and the schema defaults drifted apart"


@pytest.mark.parametrize("raw, key", [
    ({"face_crop": {"img_size": -3}}, "face_crop.img_size"),
    ({"face_crop": {"img_size": "big"}}, "face_crop.img_size"),
    ({"face_crop": {"backend": "mtcnn"}}, "face_crop.backend"),
    ({"face_crop": {"smooth_window": 4}}, "face_crop.smooth_window"),
    ({"mel": {"fmax": 9000}}, "mel"),
    ({"align": {"backend": "gentle"}}, "align.backend"),
    ({"ray": {"num_cpus": 0}}, "ray.num_cpus"),
    ({"manifest": {"roots": [{"name": "a b", "path": "x"}]}}, "manifest.roots.0.name"),
    ({"manifest": {"roots": [{"name": "x", "path": "x", "layout": "vox"}]}}, "manifest.roots.0.layout"),
    ({"sample_corpus": {"min_seconds": 5, "max_seconds": 2}}, "sample_corpus"),
    ({"face_crop": {"img_sise": 96}}, "face_crop.img_sise"),
    ({"train_generator": {"pixel_only_steps": -1}}, "train_generator.pixel_only_steps"),
    ({"train_generator": {"pixel_only_steps": 5, "losses": {"pixel": False}}}, "train_generator"),
    ({"train_generator": {"mouth_region": [0.8, 0.5, 0.3, 0.7]}}, "train_generator"),
    ({"train_generator": {"mouth_region": [0.5, 0.8, 0.3]}}, "train_generator.mouth_region"),
    ({"train_expert": {"lr_schedule": "linear"}}, "train_expert.lr_schedule"),
    ({"sample_corpus": {"held_out_clips_per_identity": 0}}, "sample_corpus.held_out_clips_per_identity"),
])
def test_bad_value_names_the_key_in_one_line(raw, key):
    with pytest.raises(ParamsError) as exc:
        parse_params(raw)
    msg = str(exc.value)
    assert "\n" not in msg
    assert f": {key}:" in msg


def test_unknown_key_says_so():
    with pytest.raises(ParamsError, match="unknown key"):
        parse_params({"face_crop": {"img_sise": 96}})


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("face_crop: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_check_params_exit_code(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"face_crop": {"img_size": 0}}))
    proc = subprocess.run([sys.executable, "-m", "lipforge.cli", "check-params", str(bad)], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "face_crop.img_size" in proc.stderr
