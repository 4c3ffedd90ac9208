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

# The generators' arithmetic (`precision` of silent_refs and train_generator); lipforge/train/precision.py reads
# the allowed values from here, so params and the code that runs them cannot disagree. `Precision` is what a
# forward pass runs in; a param may also say `auto`, which each training worker resolves for its own device
# (bf16 where the hardware runs bfloat16 natively, else fp32) and records.
Precision = Literal["fp32", "bf16"]
PrecisionSetting = Literal["auto", "fp32", "bf16"]


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
    # The photos (assets of `lipforge.corpus.faces.PHOTOS`) whose faces are the corpus's identities: 10 by
    # default. The six face-api group photos (npm) add 19 training faces (what they change: docs/experiments.md,
    # "More faces").
    photos: list[str] = Field(default=["astronaut", "grace_hopper", "insightface_t1", "face_recognition_obama",
                                       "face_recognition_biden"], min_length=1)
    # Identities (see `lipforge.corpus.faces`) held out entirely for val/test: split by identity.
    val_identities: list[str] = ["grace_hopper"]
    test_identities: list[str] = ["insightface_t1_2", "face_recognition_biden"]
    # Clips of each val/test identity (fewer if n_clips runs out); the training identities share the rest.
    held_out_clips_per_identity: int = Field(default=6, ge=1)

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


class TrainerParams(Section):
    # Ray Train ScalingConfig of every training stage: the same loop runs on 1 CPU worker or N GPU workers.
    num_workers: int = Field(default=1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=2.0, gt=0)
    # Ray Train restarts a failed worker group this many times from the latest checkpoint.
    max_failures: int = Field(default=0, ge=-1)
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=25, ge=1)


class ExpertSpec(Section):
    arch: Literal["syncnet", "avsyncnet"]
    seed: int
    steps: int | None = Field(default=None, ge=1)  # null: train_expert.steps


class SyncNetArch(Section):
    # Channel multiplier on Wav2Lip's SyncNet_color (1.0 = the published network).
    width: float = Field(default=0.25, gt=0)
    embed_dim: int = Field(default=128, ge=8)


class AVSyncNetArch(Section):
    # Paper: image ResNet-50 (3, 4, 6, 3) stem width 64; audio ResNetSE-34 (3, 4, 6, 3) width 32; 512-d.
    image_layers: list[int] = Field(default=[1, 1, 1, 1], min_length=4, max_length=4)
    image_width: int = Field(default=16, ge=4)
    audio_layers: list[int] = Field(default=[1, 1, 1, 1], min_length=4, max_length=4)
    audio_width: int = Field(default=16, ge=4)
    embed_dim: int = Field(default=128, ge=8)
    # What the image encoder sees of the 5-frame window: "frames" (paper) or "motion" (lipforge's: each frame minus
    # the window's mean frame, so the face's own appearance cancels; models/avsyncnet.py). Measured over two
    # expert seeds, motion does not generalise better to unseen faces (docs/experiments.md, "The expert's own knobs").
    image_input: Literal["frames", "motion"] = "frames"
    # Which columns of the lower half the image encoder sees, as fractions of its width: [0, 1] (paper) the whole
    # lower half; [0.25, 0.75] the middle half, mouth and chin without cheeks, jaw line and background
    # (lipforge's; models/avsyncnet.py, docs/experiments.md "The expert's own knobs").
    image_columns: list[float] = Field(default=[0.0, 1.0], min_length=2, max_length=2)

    @field_validator("image_columns")
    @classmethod
    def _band(cls, v: list[float]) -> list[float]:
        if not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError(f"needs 0 <= first < second <= 1, got {v}")
        return v


class WindowAugmentParams(Section):
    # One random similarity transform and light per training window, all 5 frames alike
    # (lipforge/train/augment.py). The expert's defaults; the generators' section switches every part off.
    # Paper (Wav2Lip, AVSyncNet): none, on LRS2's thousands of speakers; on a corpus with few faces an expert
    # without it reads those faces instead of the mouth (README, "Training and evaluation": Experts).
    flip: bool = True
    max_shift: float = Field(default=0.05, ge=0, le=0.5)
    max_zoom: float = Field(default=0.15, ge=0, lt=1)
    brightness: float = Field(default=0.3, ge=0, lt=1)
    colour: float = Field(default=0.15, ge=0, lt=1)


class TrainExpertParams(Section):
    out_dir: str = "data/experts"
    # One train_expert@<name> stage each. `train` guides the generators; `eval` only scores them (LSE-D/C),
    # so a generator is never judged by its own teacher.
    experts: dict[str, ExpertSpec] = {"train": ExpertSpec(arch="avsyncnet", seed=1, steps=2000),
                                      "eval": ExpertSpec(arch="syncnet", seed=2)}
    syncnet: SyncNetArch = SyncNetArch()
    avsyncnet: AVSyncNetArch = AVSyncNetArch()
    steps: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=32, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    # constant (Wav2Lip) | cosine: decays from lr to 0 over the expert's steps (lipforge.train.lr_schedule)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # Off-sync audio comes from another clip with this probability, else from the same clip shifted by
    # at least `min_negative_shift` frames (a non-overlapping window). Wav2Lip: 0 (same video). Another
    # clip's voice lets the expert match voice to face instead of lips to sounds, which fails on new speakers.
    negative_other_clip_fraction: float = Field(default=0.0, ge=0, le=1)
    min_negative_shift: int = Field(default=5, ge=1)
    # An audio window whose mean normalised mel level (-max_abs_value .. +max_abs_value) is below this is
    # silence; silence is never the off-sync partner of an in-sync silent window (that pair would look in sync).
    # null: no such rule (Wav2Lip). -3.5 suits clean speech; raise it for noisy corpora.
    negative_silence_level: float | None = -3.5
    eval_every: int = Field(default=200, ge=1)
    eval_windows: int = Field(default=512, ge=2)
    augment: WindowAugmentParams = WindowAugmentParams()
    # Weight of the auxiliary mouth-shape loss (lipforge.losses.mouth_shape_loss): both encoders also predict
    # landmark-derived lip descriptors of their frames. Paper: 0 (BCE alone); 0 here turns it off.
    mouth_shape_weight: float = Field(default=1.0, ge=0)
    # Weight of multi-way matching (lipforge.losses.multiway_sync_loss; Chung et al. 2019, "Perfect Match"): each
    # in-sync window's video also has to pick its own audio out of `multiway_candidates` off-sync windows of the
    # same clip, by cross entropy over the cosine similarities / `multiway_temperature`. Paper: 0 (BCE alone).
    multiway_weight: float = Field(default=0.0, ge=0)
    multiway_candidates: int = Field(default=8, ge=1)
    multiway_temperature: float = Field(default=0.1, gt=0)
    # The delivered expert (and the held-out scores) is the exponential moving average of its weights with this
    # decay (lipforge.train.weight_average); null: the last step's weights (Wav2Lip).
    ema_decay: float | None = Field(default=0.995, gt=0, lt=1)
    # Gate on held-out (test) speakers: sync/off-sync accuracy at cosine similarity 0.5.
    min_test_accuracy: float = Field(default=0.9, ge=0, le=1)

    @model_validator(mode="after")
    def _train_and_eval(self):
        if "train" not in self.experts or "eval" not in self.experts:
            raise ValueError(f"experts needs a 'train' and an 'eval' entry, got {sorted(self.experts)}")
        if self.experts["train"].seed == self.experts["eval"].seed:
            raise ValueError("the train and eval experts need different seeds (an independent judge)")
        return self


class GeneratorArch(Section):
    # Channel multiplier on Wav2Lip's generator / discriminator (1.0 = published).
    wav2lip_width: float = Field(default=0.25, gt=0)
    # Stabilized-Sync U-Net (G_L and G_S): encoder stem width and number of FE/FD blocks.
    stabilized_width: int = Field(default=8, ge=4)
    stabilized_blocks: int = Field(default=5, ge=2)
    discriminator_width: int = Field(default=16, ge=4)


class PerceptualParams(Section):
    # VGG-19 ImageNet weights (vgg19-dcbb9e9d.pth, found by lipforge.weights.locate) when present; else a
    # fixed randomly initialised VGG-19 (recorded in provenance).
    # The paper's five layers relu1_1 ... relu5_1 (weights 1/32 ... 1) make a G_L step about 1.4x slower on a CPU; the
    # default stops at relu3_1, with the same halving per layer and the deepest at 1 (README, deviations table).
    layers: list[str] = ["relu1_1", "relu2_1", "relu3_1"]
    layer_weights: list[float] = [0.25, 0.5, 1.0]
    # Frames of each 5-frame window that get the perceptual and triplet terms: all (paper) or middle
    # (one frame: VGG-19 on all 5 frames costs ~3 s per batch on a 2-core CPU).
    frames: Literal["all", "middle"] = "middle"

    @model_validator(mode="after")
    def _one_weight_per_layer(self):
        if len(self.layers) != len(self.layer_weights):
            raise ValueError(f"{len(self.layers)} layers but {len(self.layer_weights)} layer_weights")
        return self


class LossSwitches(Section):
    pixel: bool = True
    perceptual: bool = True
    gan: bool = True
    sync: bool = True
    triplet: bool = True
    # lipforge's, not the paper's: an extra pixel L1 on the mouth region (GeneratorSection.mouth_region), a pixel
    # term, so it also trains in the pixel-only phase. Stabilized G_L and G_S only (wav2lip's recipe has none).
    mouth_pixel: bool = False
    # lipforge's, not the paper's: the expert's mouth-shape head reads the generated and the target mouths, and they
    # should match (lipforge.losses.mouth_shape_match_loss). Stabilized G_L only; needs an expert trained with
    # train_expert.mouth_shape_weight > 0.
    mouth_shape: bool = False


class StabilizedWeights(Section):
    # Eq. 5: L = L_GAN + 10 L_pixel + 1 L_per + 2 L_ss + 0.5 L_at.
    gan: float = 1.0
    pixel: float = 10.0
    perceptual: float = 1.0
    sync: float = 2.0
    triplet: float = 0.5
    triplet_alpha: float = 1.0
    mouth_pixel: float = 10.0
    mouth_shape: float = 1.0


class Wav2LipWeights(Section):
    # Wav2Lip: L = (1 - s - g) L1 + s E_sync + g L_gen, s = 0.03, g = 0.07.
    sync: float = Field(default=0.03, ge=0, lt=1)
    gan: float = Field(default=0.07, ge=0, lt=1)


class OptimParams(Section):
    steps: int = Field(default=600, ge=1)
    batch_size: int = Field(default=4, ge=1)
    lr: float = Field(default=1e-4, gt=0)  # paper: 1e-4 (after the pixel-only phase, see GeneratorSection)
    betas: list[float] = Field(default=[0.5, 0.999], min_length=2, max_length=2)


class GeneratorSection(Section):
    """What G_S (silent_refs) and G_L (train_generator) share: optimiser, loss switches and weights, schedule."""
    optim: OptimParams = OptimParams()
    losses: LossSwitches = LossSwitches()
    weights: StabilizedWeights = StabilizedWeights()
    # The first N steps train with the pixel loss alone at pixel_only_lr, then every switched-on term at optim.lr
    # (paper: 0, all terms from the start).
    pixel_only_steps: int = Field(default=0, ge=0)
    pixel_only_lr: float = Field(default=1e-3, gt=0)
    # The delivered generator is the exponential moving average of its weights with this decay (null: the last
    # step's weights; paper: not stated).
    ema_decay: float | None = Field(default=None, gt=0, lt=1)
    # Where losses.mouth_pixel looks: [top, bottom, left, right] as fractions of the face crop. The default holds
    # the sample corpus's mouth landmarks (1st-99th percentile: rows 0.54-0.76, columns 0.34-0.68).
    mouth_region: list[float] = Field(default=[0.5, 0.8, 0.3, 0.7], min_length=4, max_length=4)
    # lipforge's, not the paper's: each training window and its identity references under one random mirror,
    # shift, zoom and light (the expert's augmentation, lipforge/train/augment.py). Default: all off (paper: none).
    augment: WindowAugmentParams = WindowAugmentParams(flip=False, max_shift=0, max_zoom=0, brightness=0, colour=0)
    # The generator's and VGG's forward passes in float32 or, lipforge's, in bfloat16 under autocast (losses,
    # weights and optimiser state stay float32; lipforge/train/precision.py). bf16 is faster only where the hardware
    # runs it natively (CPUs with AVX-512 BF16 or AMX, GPUs from Ampere on) and changes the numbers; `auto` picks
    # bf16 there and fp32 elsewhere, per training worker.
    precision: PrecisionSetting = "fp32"

    @model_validator(mode="after")
    def _mouth_region_inside_the_crop(self):
        top, bottom, left, right = self.mouth_region
        if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
            raise ValueError(f"mouth_region {self.mouth_region} must be [top, bottom, left, right] fractions with "
                             "0 <= top < bottom <= 1 and 0 <= left < right <= 1")
        return self

    @model_validator(mode="after")
    def _pixel_only_needs_pixel(self):
        if self.pixel_only_steps and not self.losses.pixel:
            raise ValueError(f"pixel_only_steps is {self.pixel_only_steps} but losses.pixel is false: switch the "
                             "pixel loss on, or set pixel_only_steps to 0")
        return self


class SilentRefsParams(GeneratorSection):
    out_dir: str = "data/silent_refs"
    # G_S: the G_L architecture trained without sync and triplet losses (lambda3 = lambda4 = 0).
    optim: OptimParams = OptimParams(steps=400)
    losses: LossSwitches = LossSwitches(sync=False, triplet=False)
    pixel_only_steps: int = Field(default=300, ge=0)
    # Closed-lip references kept per clip (frames evenly spaced over the clip), used as identity refs.
    refs_per_clip: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _no_sync_terms(self):
        if self.losses.sync or self.losses.triplet:
            raise ValueError("G_S is trained without sync and triplet losses (paper sec. 3.5): set "
                             "losses.sync and losses.triplet to false")
        return self


class TrainGeneratorParams(GeneratorSection):
    out_dir: str = "data/generator"
    method: Literal["wav2lip", "stabilized"] = "stabilized"
    optim: OptimParams = OptimParams(steps=375, batch_size=16)
    pixel_only_steps: int = Field(default=175, ge=0)
    # G_L's arithmetic: bf16 where the hardware runs it natively (docs/experiments.md "bf16 at batch 16"). The wav2lip
    # baseline keeps its own, fp32: in bf16 it fell on every figure in the one seed measured.
    precision: PrecisionSetting = "auto"
    wav2lip_precision: PrecisionSetting = "fp32"
    # Each term is a switch for ablations (`dvc exp run -S train_generator.losses.triplet=false`).
    # wav2lip uses pixel, sync and gan only.
    losses: LossSwitches = LossSwitches()
    wav2lip_weights: Wav2LipWeights = Wav2LipWeights()
    # stabilized G_L only (lipforge's, not the paper's; 0 = the paper's bottleneck-only audio): channels of a
    # learned projection of the audio embedding joined to every decoder level, over audio_skip_rows of the frame.
    audio_skip_channels: int = Field(default=16, ge=0)
    audio_skip_rows: Literal["lower_half", "all"] = "lower_half"
    # stabilized G_L only: what G_L hears of the frozen expert audio encoder, its sync embedding (the paper) or its
    # pooled features before the projection to that embedding (lipforge's; docs/experiments.md "What G_L hears").
    audio_input: Literal["embedding", "features"] = "features"
    # Both methods: frame i hears the 16-mel window that starts at frame i + audio_offset (0: Wav2Lip's inference;
    # -2: the window centred on frame i).
    audio_offset: int = Field(default=-2, ge=-4, le=0)
    # paper: none (the last step's weights). Measured on the sample corpus: the average of G_L's last ~100 steps
    # follows the audio better than the last step (docs/experiments.md "Weight averaging").
    ema_decay: float | None = Field(default=0.99, gt=0, lt=1)


class EvaluateParams(Section):
    split: Literal["train", "val", "test"] = "test"
    # syncnet_python's search range for LSE-D/LSE-C, in video frames.
    vshift: int = Field(default=15, ge=1)
    n_videos: int = Field(default=3, ge=0)
    grid_clips: int = Field(default=4, ge=1)
    grid_frames: int = Field(default=6, ge=1)
    # Gates reported in reports/metrics.json (sample corpus): mouth-opening correlation of the generator.
    min_mouth_corr: float = Field(default=0.8, ge=-1, le=1)


class FlowParams(Section):
    # Prefect pipeline flow: each DVC stage is a task, retried this often on a transient failure.
    retries: int = Field(default=1, ge=0)
    retry_delay_seconds: float = Field(default=10, ge=0)


class GatedMetric(Section):
    # `higher`: larger is better (LSE-C, SSIM); `lower`: smaller is better (LSE-D, LMD).
    direction: Literal["higher", "lower"]
    # Largest tolerated move in the bad direction, in the metric's own units (0 = any regression rejects).
    tolerance: float = Field(default=0.0, ge=0)


class NightlyParams(Section):
    deployment: str = "nightly-retrain"
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    # DVC remote that accepted runs push to (null: the repository's default remote, see .dvc/config).
    remote: str | None = None
    # Metrics of reports/metrics.json (dotted paths, `{method}` = train_generator.method) that must not regress
    # against the last accepted run by more than their tolerance.
    gate: dict[str, GatedMetric] = {
        "rows.{method}.lse_c": GatedMetric(direction="higher", tolerance=0.05),
        "rows.{method}.lse_d": GatedMetric(direction="lower", tolerance=0.05),
        "rows.{method}.ssim": GatedMetric(direction="higher", tolerance=0.01),
        "rows.{method}.mouth_opening_corr_pooled": GatedMetric(direction="higher", tolerance=0.02),
    }


class HistoryParams(Section):
    # One row per pipeline run (flows append); accepted nightly runs keep their dvc.lock under accepted_dir.
    path: str = "runs/history.parquet"
    accepted_dir: str = "runs/accepted"


class Params(Section):
    seed: int = 1234
    ray: RayParams = RayParams()
    sample_corpus: SampleCorpusParams = SampleCorpusParams()
    manifest: ManifestParams = ManifestParams()
    face_crop: FaceCropParams = FaceCropParams()
    mel: MelParams = MelParams()
    align: AlignParams = AlignParams()
    trainer: TrainerParams = TrainerParams()
    train_expert: TrainExpertParams = TrainExpertParams()
    generator: GeneratorArch = GeneratorArch()
    perceptual: PerceptualParams = PerceptualParams()
    silent_refs: SilentRefsParams = SilentRefsParams()
    train_generator: TrainGeneratorParams = TrainGeneratorParams()
    evaluate: EvaluateParams = EvaluateParams()
    flow: FlowParams = FlowParams()
    nightly: NightlyParams = NightlyParams()
    history: HistoryParams = HistoryParams()


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
