"""The one typed schema for params.yaml.

Every stage reads its section through `load_params()`; a bad value fails at start with one line that
names the key, the value and what is allowed (`ParamsError`). Sections forbid unknown keys so a typo
is an error, not a silently ignored setting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A params.yaml problem, phrased as one actionable line."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RayParams(Section):
    # null: start a local Ray on this machine; "auto" or "ray://head:10001": join that cluster.
    address: str | None = None
    # Only used when starting a local Ray (address null); null = all cores.
    num_cpus: int | None = Field(default=None, ge=1)
    cpus_per_task: float = Field(default=1.0, gt=0)
    gpus_per_task: float = Field(default=0.0, ge=0)


class SampleCorpusParams(Section):
    out_dir: str = "data/sample_corpus"
    n_clips: int = Field(default=60, ge=3)
    min_seconds: float = Field(default=2.0, gt=0)
    max_seconds: float = Field(default=4.0, gt=0)
    frame_size: int = Field(default=256, ge=128, le=1024)
    fps: Literal[25] = 25
    sample_rate: Literal[16000] = 16000
    # Face width (jaw line, landmark 0 to 16) as a fraction of the frame width.
    face_width_fraction: float = Field(default=0.42, ge=0.3, le=0.6)
    # espeak-ng voice names (language + variant) and words-per-minute rates, cycled over clips.
    voices: list[str] = Field(default=["en-us", "en-us+m3", "en-us+f2", "en-us+m1", "en-us+f4"], min_length=1)
    rates_wpm: list[int] = Field(default=[150, 170, 190], min_length=1)
    # Identities (see `lipforge.corpus.faces`) held out entirely for val/test: split by identity.
    val_identities: list[str] = ["grace_hopper"]
    test_identities: list[str] = ["insightface_t1_2", "face_recognition_biden"]

    @model_validator(mode="after")
    def _durations_ordered(self):
        if self.max_seconds < self.min_seconds:
            raise ValueError("max_seconds must be >= min_seconds")
        return self

    @field_validator("frame_size")
    @classmethod
    def _encoder_safe_size(cls, v: int) -> int:
        # Measured with PyAV 18 / libx264: at widths that are not a multiple of 128 px the .mp4 bytes vary
        # from run to run (same frames, one encoder thread, zeroed row padding), at 128/256/384 they do not.
        if v % 128:
            raise ValueError(f"must be a multiple of 128 (128, 256, 384...) so the .mp4 files are "
                             f"byte-reproducible; nearest: {max(128, round(v / 128) * 128)}")
        return v

    @model_validator(mode="after")
    def _splits_disjoint(self):
        both = sorted(set(self.val_identities) & set(self.test_identities))
        if both:
            raise ValueError(f"identities {both} are in both val_identities and test_identities; an identity "
                             "belongs to one split")
        return self


class CorpusRoot(Section):
    # Names the root's scan stage (scan_corpus@<i>) and its part file data/manifest/roots/<name>.parquet.
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str
    # lrs2: <spk>/<clip>.mp4 + .txt (LRS2 and LRS3); grid: s<N>/*.mpg + align/*.align;
    # folder: any videos with a same-named .txt transcript, speaker = parent folder.
    layout: Literal["lrs2", "grid", "folder"] = "lrs2"


class SplitParams(Section):
    # Used for speakers that no split list (train.txt/val.txt/test.txt in a root) names: each speaker goes
    # to a split by a hash of its id, so no speaker crosses splits.
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    test_fraction: float = Field(default=0.1, ge=0, lt=1)


class ManifestParams(Section):
    roots: list[CorpusRoot] = [CorpusRoot(name="sample", path="data/sample_corpus", layout="lrs2")]
    # Target rates every later stage works at; sources are converted to them.
    fps: float = Field(default=25.0, gt=0)
    sample_rate: int = Field(default=16000, gt=0)
    # Frame rates outside this range cannot be converted to `fps` without losing lip motion: reject.
    min_fps: float = Field(default=20.0, gt=0)
    max_fps: float = Field(default=60.0, gt=0)
    min_seconds: float = Field(default=0.5, gt=0)
    max_seconds: float = Field(default=600.0, gt=0)
    split: SplitParams = SplitParams()

    @model_validator(mode="after")
    def _unique_root_names(self):
        names = [r.name for r in self.roots]
        if len(set(names)) != len(names):
            raise ValueError(f"root names must be unique, got {names}")
        if not self.roots:
            raise ValueError("at least one corpus root is needed")
        return self


class FaceCropParams(Section):
    backend: Literal["auto", "face_alignment", "dlib"] = "auto"
    img_size: int = Field(default=96, ge=32, le=512)
    # Centred moving average over this many frames for the detection boxes (odd).
    smooth_window: int = Field(default=5, ge=1)
    # Extra margin around the detected box, as a fraction of its size (Wav2Lip pads 10 px at the chin).
    pad_fraction: float = Field(default=0.1, ge=0, le=1)
    # Reject a clip when more than this fraction of frames has no face.
    max_faceless_fraction: float = Field(default=0.2, ge=0, le=1)
    # raw: uint8 .npy per clip, memory-mapped (fastest windows); jpeg: encoded frames in one file per clip.
    frame_codec: Literal["raw", "jpeg"] = "raw"
    jpeg_quality: int = Field(default=95, ge=50, le=100)
    # Detect on every k-th frame and interpolate boxes in between (landmarks are computed on every frame).
    detect_every: int = Field(default=1, ge=1)
    # The detector sees frames downscaled so their longer side is at most this (boxes are scaled back;
    # landmarks and crops use full resolution): HOG/S3FD cost grows with pixels, talking faces are large.
    detect_max_side: int = Field(default=480, ge=64)

    @field_validator("smooth_window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be odd so the moving average is centred")
        return v


class MelParams(Section):
    # Wav2Lip-compatible defaults (hparams.py of Wav2Lip); change them and every expert must be retrained.
    sample_rate: int = 16000
    n_fft: int = 800
    hop_size: int = 200
    win_size: int = 800
    num_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = Field(default=0.97, ge=0, lt=1)
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    max_abs_value: float = 4.0

    @model_validator(mode="after")
    def _fmax_below_nyquist(self):
        if self.fmax > self.sample_rate / 2:
            raise ValueError(f"fmax {self.fmax} is above the Nyquist frequency {self.sample_rate / 2}")
        return self


class AlignParams(Section):
    backend: Literal["auto", "mfa", "pocketsphinx"] = "auto"
    # MFA model names (downloaded with `mfa model download ...`, see README).
    mfa_dictionary: str = "english_us_arpa"
    mfa_acoustic_model: str = "english_us_arpa"
    # Gate on the sample corpus: mean absolute phone-boundary error vs the ground-truth timeline.
    max_boundary_error_ms: float = Field(default=25.0, gt=0)


class Params(Section):
    seed: int = 1234
    ray: RayParams = RayParams()
    sample_corpus: SampleCorpusParams = SampleCorpusParams()
    manifest: ManifestParams = ManifestParams()
    face_crop: FaceCropParams = FaceCropParams()
    mel: MelParams = MelParams()
    align: AlignParams = AlignParams()


def _format_error(err: ValidationError, source: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (typo? see lipforge/params.py for the allowed keys)"
    got = first.get("input")
    got_txt = "" if first["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{source}: {key}: {msg}{got_txt}{more}"


def parse_params(raw: dict, source: Path | str = DEFAULT_PARAMS) -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ParamsError(_format_error(err, Path(source))) from None


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run lipforge from the project root (where params.yaml is)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, path)
