"""Does the frozen audio encoder that G_L hears carry the mouth opening? A linear probe.

G_L (and G_S) get the training expert's audio embedding of each frame's 16-mel window (lipforge.train.data:
frame i hears the window starting at i, which covers frames i..i+4). This fits one ridge regression from the
embedding to the mouth opening of each of those 5 frames on the train split and reports the Pearson r on the
train and test splits: the landmark inner-lip opening ratio (face_crop's landmarks, any corpus) and, on the
sample corpus, the ground-truth `mouth_open_px` of the sidecars (what the evaluate stage correlates against).

A high test r with a generator whose mouth does not follow the audio (benchmarks/audio_conditioning.py,
reports/metrics.json) says the information is there and the generator has not learned to draw it.
`--audio-input features` probes the encoder's pooled features before its projection to the embedding instead
(what G_L hears with `train_generator.audio_input: features`; thousands of dimensions, so raise --ridge).
Frame 2 of the window is the frame whose centred window this is (`train_generator.audio_offset: -2`).
`--by-clip` also prints the test r of that frame per test clip: where the audio carries the opening badly, an
audio-driven generator cannot draw it (compare `benchmarks/mouth_opening_by_identity.py --by-clip`).
Needs `dvc repro train_expert`. Usage: python benchmarks/audio_embedding_probe.py [--ridge 1.0] [--audio-input features] [--by-clip]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge.metrics import correlation  # noqa: E402
from lipforge.params import load_params  # noqa: E402
from lipforge.train.artifacts import load_expert  # noqa: E402
from lipforge.train.data import WINDOW, Clip, load_clips  # noqa: E402

FACE_DIR, MEL_INDEX, MANIFEST = Path("data/face_crop"), Path("data/mel/index.parquet"), Path("data/manifest/manifest.parquet")


def ridge_fit(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights (D + 1, K) of y ~ [x, 1] @ w, with an L2 penalty `ridge` on all weights (x is standardized)."""
    a = np.c_[x, np.ones(len(x))]
    return np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y)


def ridge_predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.c_[x, np.ones(len(x))] @ w


def per_column_r(pred: np.ndarray, target: np.ndarray) -> list[float]:
    return [correlation(pred[:, k], target[:, k]) for k in range(target.shape[1])]


def per_clip_r(pred: np.ndarray, target: np.ndarray, clip_ids: np.ndarray) -> dict[str, float]:
    """Pearson r of pred against target over the rows of each clip, by clip id."""
    return {str(c): correlation(pred[clip_ids == c], target[clip_ids == c]) for c in np.unique(clip_ids)}


@torch.no_grad()
def window_data(expert: torch.nn.Module, clips: list[Clip], sidecars: dict[str, Path],
                audio_input: str = "embedding") -> dict[str, np.ndarray]:
    """Per window start: the audio embedding or features (N, D) and the 5 frames' openings, landmark ratio and
    sidecar px."""
    encode = expert.audio_encoder.features if audio_input == "features" else expert.encode_audio
    emb, ratio, px, ids = [], [], [], []
    for clip in clips:
        starts = range(clip.n_windows)
        ids += [clip.clip_id] * clip.n_windows
        mels = torch.from_numpy(np.stack([clip.sync_mel(s) for s in starts]))[:, None]
        emb.append(encode(mels).numpy())
        ratio.append(np.stack([clip.mouth_shapes[s:s + WINDOW, 0] for s in starts]))
        if clip.clip_id in sidecars:
            gt = np.asarray(json.loads(sidecars[clip.clip_id].read_text())["mouth"]["mouth_open_px"], dtype=float)
            px.append(np.stack([gt[s:s + WINDOW] for s in starts]))
    out = {"embedding": np.concatenate(emb), "landmark_opening_ratio": np.concatenate(ratio), "clip_id": np.array(ids)}
    if len(px) == len(clips):
        out["sidecar_mouth_open_px"] = np.concatenate(px)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expert", default=None, help="default: the `train` expert of params.yaml")
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--audio-input", choices=("embedding", "features"), default="embedding")
    ap.add_argument("--by-clip", action="store_true", help="also the centre frame's test r per test clip")
    args = ap.parse_args()
    torch.set_num_threads(2)
    params = load_params()
    expert = load_expert(args.expert or Path(params.train_expert.out_dir) / "train" / "model.pt")[0].eval()
    manifest = pd.read_parquet(MANIFEST)
    sidecars = ({r.clip_id: Path(r.gt_path) for r in manifest.itertuples() if isinstance(r.gt_path, str)}
                if "gt_path" in manifest.columns else {})
    data = {split: window_data(expert, load_clips(FACE_DIR, MEL_INDEX, (split,)), sidecars, args.audio_input)
            for split in ("train", "test")}
    mean, std = data["train"]["embedding"].mean(0), data["train"]["embedding"].std(0) + 1e-8
    x = {split: (d["embedding"] - mean) / std for split, d in data.items()}
    print(f"expert {args.expert or 'train'}, {args.audio_input} ({x['train'].shape[1]}-d), ridge {args.ridge}, windows: "
          + ", ".join(f"{split} {len(v)}" for split, v in x.items()))
    print("Pearson r of the probe, by frame of the window (the frame that hears this window in G_L: 0 with "
          "audio_offset 0, 2 with -2):")
    for target in ("landmark_opening_ratio", "sidecar_mouth_open_px"):
        if target not in data["train"] or target not in data["test"]:
            continue
        w = ridge_fit(x["train"], data["train"][target], args.ridge)
        for split in ("train", "test"):
            r = per_column_r(ridge_predict(x[split], w), data[split][target])
            print(f"  {target:24s} {split:5s} " + "  ".join(f"{v:.3f}" for v in r))
        if args.by_clip:
            centre = WINDOW // 2
            clips = per_clip_r(ridge_predict(x["test"], w)[:, centre], data["test"][target][:, centre],
                               data["test"]["clip_id"])
            print(f"    test clips, frame {centre}: " + ", ".join(f"{c} {v:.3f}" for c, v in clips.items()))


if __name__ == "__main__":
    main()
