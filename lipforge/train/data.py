"""Training windows: 5 consecutive face crops and their mel windows, sampled from the preprocessed clips.

A window starting at video frame t covers frames t..t+4. The lip-sync expert pairs it with the 16 mel
frames starting at t (Wav2Lip's syncnet window); the generator gives every frame i its own 16-mel window
starting at frame i + audio_offset (0: Wav2Lip's inference, whose window covers frames i..i+4; -2: the window
centred on frame i). `lipforge.mel.mel_start_index` is the one frame -> mel mapping used for both.

Frames stay in their memory-mapped frame stores; a batch reads only its windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from lipforge.face.clipmeta import read_clip_meta
from lipforge.face.framestore import FrameStore
from lipforge.mel import SYNC_MEL_STEP, mel_start_index, usable_frames
from lipforge.stage import StageError
from lipforge.train.mouth_shape import mouth_shape

WINDOW = 5  # frames per window (Wav2Lip's syncnet_T)


@dataclass
class Clip:
    clip_id: str
    frames: FrameStore          # (T, H, W, 3) uint8
    mel: np.ndarray             # (num_mels, M) float32
    n_windows: int              # valid window starts are 0 .. n_windows-1
    meta_path: Path | None = None  # face_crop's per-clip landmarks (.npz)

    def window_frames(self, start: int) -> np.ndarray:
        return self.frames.read_window(start, WINDOW)

    def sync_mel(self, start: int) -> np.ndarray:
        """(num_mels, 16): the expert's audio for the window starting at `start`."""
        s = mel_start_index(start)
        return self.mel[:, s:s + SYNC_MEL_STEP]

    def frame_mels(self, start: int, audio_offset: int = 0) -> np.ndarray:
        """(5, num_mels, 16): one mel window per frame of the window (the generator's audio input), frame i's
        starting at frame i + audio_offset, clamped to the clip (near its ends a frame hears the nearest window)."""
        last = self.n_windows + WINDOW - 2  # the last frame whose 16-mel window lies inside the mel
        return np.stack([self.sync_mel(min(max(start + i + audio_offset, 0), last)) for i in range(WINDOW)])

    @cached_property
    def window_levels(self) -> np.ndarray:
        """(n_windows,) mean normalised mel level of each window's expert audio, computed once per clip
        (negative sampling tests every candidate window for silence)."""
        return np.array([self.sync_mel(s).mean() for s in range(self.n_windows)], dtype=np.float32)

    @cached_property
    def mouth_shapes(self) -> np.ndarray:
        """(T, 3) per-frame mouth-shape descriptors from the crop landmarks (lipforge.train.mouth_shape)."""
        if self.meta_path is None:
            raise StageError(f"clip {self.clip_id} has no face_crop landmarks file; re-run `dvc repro face_crop`")
        try:
            return mouth_shape(read_clip_meta(self.meta_path)["landmarks_crop"])
        except ValueError as e:
            raise StageError(f"clip {self.clip_id}: bad landmarks in {self.meta_path}: {e}; re-run "
                             "`dvc repro face_crop`, or drop the clip from the manifest") from e


def count_windows(n_frames: int, n_mel: int) -> int:
    """Window starts t with all 5 frames present and the last frame's 16-mel window inside the mel."""
    return max(0, usable_frames(n_frames, n_mel) - (WINDOW - 1))


def load_clips(face_dir: str | Path, mel_index: str | Path, splits: tuple[str, ...]) -> list[Clip]:
    """Clips of the given splits that face_crop and mel both produced, with at least one window."""
    face_dir, mel_index = Path(face_dir), Path(mel_index)
    for path, stage in ((face_dir / "index.parquet", "face_crop"), (mel_index, "mel")):
        if not path.exists():
            raise StageError(f"{path} not found; run the {stage} stage first (`dvc repro {stage}`)")
    faces = pd.read_parquet(face_dir / "index.parquet")
    mels = pd.read_parquet(mel_index)[["clip_id", "mel_path"]]
    rows = faces[faces["split"].isin(splits)].merge(mels, on="clip_id").sort_values("clip_id")
    clips = []
    for row in rows.itertuples():
        # The mel stage writes <its out dir>/clips/<clip_id>.npy; resolving from the index keeps this working
        # where Ray Train runs the loop in another working directory.
        mel = np.load(mel_index.parent / "clips" / f"{row.clip_id}.npy")
        frames = FrameStore.open(face_dir / row.frames_path)
        n = count_windows(len(frames), mel.shape[1])
        if n > 0:
            clips.append(Clip(row.clip_id, frames, mel, n, face_dir / row.meta_path))
    if not clips:
        raise StageError(f"no clips of split(s) {', '.join(splits)} with a full 5-frame window in "
                         f"{face_dir / 'index.parquet'}; check the manifest split and the face_crop rejects")
    return clips


def to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
    return np.moveaxis(frames.astype(np.float32) / 255.0, -1, -3)


@dataclass(frozen=True)
class Negatives:
    """How off-sync pairs are drawn.

    other_clip_fraction: probability that the off-sync audio comes from another clip, else from the same clip
    shifted by at least `min_shift` frames. silence_level: an audio window whose mean normalised mel level is
    below this counts as silence; a silent window is never the off-sync partner of a silent in-sync window,
    because silence against silence is not observably off-sync (it would be a positive labelled negative).
    """
    other_clip_fraction: float = 0.5
    min_shift: int = WINDOW
    silence_level: float | None = None


def silent_windows(levels, silence_level: float | None) -> np.ndarray:
    """Which window levels (mean normalised mel, a scalar or an array) count as silence: below `silence_level`;
    none when it is None."""
    if silence_level is None:
        return np.zeros(np.shape(levels), dtype=bool)
    return np.asarray(levels) < silence_level


def is_silent(mel_window: np.ndarray, silence_level: float | None) -> bool:
    return bool(silent_windows(mel_window.mean(), silence_level))


def same_clip_off_sync_starts(clip: Clip, t: int, neg: Negatives) -> np.ndarray:
    """The window starts of `clip` that may be the off-sync audio of its window t: at least `min_shift` frames
    away, and not silence when window t is silent."""
    silent_here = silent_windows(clip.window_levels, neg.silence_level)
    far = np.abs(np.arange(clip.n_windows) - t) >= neg.min_shift
    return np.flatnonzero(far & ~(silent_here[t] & silent_here))


def _no_off_sync_window(clip: Clip, t: int, neg: Negatives) -> StageError:
    # Reached only when the clip alone must supply the off-sync audio (a one-clip corpus, or multi-way candidates).
    return StageError(f"clip {clip.clip_id} has no window at least {neg.min_shift} frames from window {t} that can be "
                      f"its off-sync audio ({clip.n_windows} windows; a silent window needs a non-silent partner): "
                      f"use longer clips, or lower train_expert.min_negative_shift or "
                      f"train_expert.negative_silence_level")


def _negative_start(clips: list[Clip], ci: int, t: int, rng: np.random.Generator, neg: Negatives) -> tuple[int, int]:
    """An off-sync audio position: another clip, or the same clip at least `min_shift` frames away."""
    clip = clips[ci]
    silent = bool(silent_windows(clip.window_levels[t], neg.silence_level))

    def usable(c: Clip, s: int) -> bool:
        return not (silent and silent_windows(c.window_levels[s], neg.silence_level))

    same = same_clip_off_sync_starts(clip, t, neg)
    if len(clips) > 1 and (not len(same) or rng.random() < neg.other_clip_fraction):
        for _ in range(100):  # a non-silent partner exists in any real corpus; don't loop forever on one that has none
            cj = int(rng.integers(len(clips) - 1))
            cj = cj + 1 if cj >= ci else cj
            s = int(rng.integers(clips[cj].n_windows))
            if usable(clips[cj], s):
                return cj, s
        raise StageError(f"no off-sync partner with speech for a silent window of clip {clip.clip_id}: is the corpus "
                         f"silent? (train_expert.negative_silence_level = {neg.silence_level})")
    if not len(same):
        raise _no_off_sync_window(clip, t, neg)
    return ci, int(rng.choice(same))


def random_window(clips: list[Clip], rng: np.random.Generator) -> tuple[int, int]:
    """(clip position, window start), uniform over clips, then over the clip's windows: how every batch draws."""
    ci = int(rng.integers(len(clips)))
    return ci, int(rng.integers(clips[ci].n_windows))


def expert_batch(clips: list[Clip], rng: np.random.Generator, batch_size: int, neg: Negatives,
                 mouth_shapes: dict[str, np.ndarray] | None = None, multiway: int = 0,
                 multiway_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Half in-sync, half off-sync (frames, mel) pairs: frames (B, 5, 3, H, W), mels (B, 1, 80, 16), label (B,).
    With `mouth_shapes` (clip id -> (T, k) per-frame descriptors), also the descriptors (B, 5, k) of the shown
    frames (`video_mouth`) and of the frames the audio belongs to (`audio_mouth`). With `multiway` = K > 0, also
    `candidate_mels` (P, K, 1, 80, 16): for each of the P in-sync pairs, K off-sync audio windows of its own clip
    (`same_clip_off_sync_starts`, with replacement when the clip has fewer), drawn from `multiway_rng` (default:
    `rng`)."""
    frames, mels, labels, video_mouth, audio_mouth, candidates = [], [], [], [], [], []
    for b in range(batch_size):
        ci, t = random_window(clips, rng)
        positive = b % 2 == 0
        cj, s = (ci, t) if positive else _negative_start(clips, ci, t, rng, neg)
        frames.append(clips[ci].window_frames(t))
        mels.append(clips[cj].sync_mel(s))
        labels.append(1.0 if positive else 0.0)
        if multiway and positive:
            starts = same_clip_off_sync_starts(clips[ci], t, neg)
            if not len(starts):
                raise _no_off_sync_window(clips[ci], t, neg)
            picks = (multiway_rng or rng).choice(starts, size=multiway, replace=len(starts) < multiway)
            candidates.append(np.stack([clips[ci].sync_mel(int(s)) for s in picks]))
        if mouth_shapes is not None:
            video_mouth.append(mouth_shapes[clips[ci].clip_id][t:t + WINDOW])
            audio_mouth.append(mouth_shapes[clips[cj].clip_id][s:s + WINDOW])
    batch = {"frames": to_float(np.stack(frames)), "mels": np.stack(mels)[:, None].astype(np.float32),
             "label": np.asarray(labels, dtype=np.float32)}
    if candidates:
        batch["candidate_mels"] = np.stack(candidates)[:, :, None].astype(np.float32)
    if mouth_shapes is not None:
        batch.update(video_mouth=np.stack(video_mouth), audio_mouth=np.stack(audio_mouth))
    return batch


def fixed_expert_set(clips: list[Clip], n: int, seed: int, neg: Negatives) -> dict:
    """A fixed, balanced held-out set (same pairs every evaluation)."""
    return expert_batch(clips, np.random.default_rng(seed), n, neg)


@dataclass(frozen=True)
class SilentRefs:
    """One clip's closed-lip identity references from G_S: frames (K, H, W, 3) uint8 and the clip frame each
    was made from (K,)."""

    frames: np.ndarray
    frame_indices: np.ndarray

    def outside_window(self, t: int) -> np.ndarray:
        """Positions of the references made from frames outside the target window t..t+4 (all of them when
        every reference lies inside it, as in a clip shorter than the pool's spacing allows)."""
        inside = (self.frame_indices >= t) & (self.frame_indices < t + WINDOW)
        keep = np.flatnonzero(~inside)
        return keep if len(keep) else np.arange(len(self.frame_indices))


def generator_batch(clips: list[Clip], rng: np.random.Generator, batch_size: int,
                    silent_refs: dict[str, SilentRefs] | None = None, audio_offset: int = 0) -> dict[str, np.ndarray]:
    """Target windows with identity references.

    gt (B, 5, 3, H, W) target frames; ref (B, 5, 3, H, W) identity references: without `silent_refs`, a
    random other window of the same clip (Wav2Lip); with them, 5 of that clip's closed-lip frames from
    G_S (Stabilized-Sync sec. 3.2), never one made from a frame of the target window itself (the paper's
    identity reference "is different from the pose reference"; a G_S that does not fully close the lips
    would otherwise hand G_L the target's own mouth). mels (B, 5, 1, 80, 16) per-frame audio (`Clip.frame_mels`);
    sync_mel (B, 1, 80, 16) the window's expert audio.
    """
    gt, ref, mels, sync = [], [], [], []
    for _ in range(batch_size):
        ci, t = random_window(clips, rng)
        clip = clips[ci]
        gt.append(clip.window_frames(t))
        if silent_refs is not None:
            refs = silent_refs[clip.clip_id]
            allowed = refs.outside_window(t)
            ref.append(refs.frames[rng.choice(allowed, size=WINDOW, replace=len(allowed) < WINDOW)])
        else:
            others = [s for s in range(clip.n_windows) if abs(s - t) >= WINDOW] or list(range(clip.n_windows))
            ref.append(clip.window_frames(int(rng.choice(others))))
        mels.append(clip.frame_mels(t, audio_offset))
        sync.append(clip.sync_mel(t))
    return {"gt": to_float(np.stack(gt)), "ref": to_float(np.stack(ref)),
            "mels": np.stack(mels)[:, :, None].astype(np.float32),
            "sync_mel": np.stack(sync)[:, None].astype(np.float32)}


def mask_lower_half(frames):
    """Wav2Lip's pose reference: the target with its lower half zeroed (works on numpy and torch)."""
    masked = frames.clone() if hasattr(frames, "clone") else frames.copy()
    masked[..., frames.shape[-2] // 2:, :] = 0
    return masked
