"""How much sync/off-sync signal the sample corpus holds for a 5-frame / 16-mel expert.

1. Silence statistics behind `train_expert.negative_silence_level`: the share of windows with silent audio and
   of same-clip negatives that pair silence with silence (off-sync in label only).
2. What the windows carry, with perfect perception: the share of same-clip negatives (sampled as in
   `train_expert`) whose shown mouth trajectory (the 5 frames' ground-truth jaw_open, lip_width, lip_round)
   lies within eps (RMS over the 15 values) of the trajectory that belongs to their audio window. No classifier
   can tell those from positives, so accuracy <= 1 - share / 2; every other pair is separable by an expert
   that reads the mouth from the pixels and the mouth its audio drives without error.
   Then a learned reference: an "oracle" expert that sees the ground-truth mouth parameters instead of
   pixels, with the same mel windows and pair sampling, a small MLP trained on train-split clips and scored on
   the test speakers. It reads the mouth perfectly but must learn audio -> mouth from the training pairs, as
   the image expert must; it is not a bound (more pairs or a better audio model raise it).
3. An audio-only regressor of the mouth: a small MLP from each frame's generator mel window (16 mel frames
   from that frame on) to its ground-truth jaw_open, trained on train-split frames; its correlation with the
   truth on the test speakers bounds the mouth-opening correlation a generator reaches from the same audio
   (evaluate's gate), short of what wider audio context would add. With --expert, the same regressor on that
   expert's (standardised) audio embeddings instead of the raw mel: does the frozen audio encoder that G_L and
   G_S hear still carry the mouth?

Needs `dvc repro face_crop mel` on the sample corpus. Usage: python benchmarks/expert_ceiling.py [--epochs 30] [--pairs 20000] [--expert data/experts/train/model.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge.mel import usable_frames  # noqa: E402
from lipforge.params import load_params  # noqa: E402
from lipforge.train.data import Clip, Negatives, _negative_start, is_silent, load_clips, random_window  # noqa: E402

FACE_DIR, MEL_INDEX, CORPUS = Path("data/face_crop"), Path("data/mel/index.parquet"), Path("data/sample_corpus")


def silence_stats(clips: list[Clip], level: float, min_shift: int, n: int = 20000) -> dict:
    windows = [(c, t) for c in clips for t in range(c.n_windows)]
    silent = sum(is_silent(c.sync_mel(t), level) for c, t in windows)
    rng, both = np.random.default_rng(0), 0
    for _ in range(n):
        c = clips[rng.integers(len(clips))]
        t = int(rng.integers(c.n_windows))
        s = int(rng.choice([s for s in range(c.n_windows) if abs(s - t) >= min_shift]))
        both += is_silent(c.sync_mel(t), level) and is_silent(c.sync_mel(s), level)
    return {"windows": len(windows), "silent_audio_windows": silent / len(windows),
            "same_clip_negatives_silent_vs_silent": both / n}


def mouth_params(clip_id: str) -> np.ndarray:
    m = json.loads((CORPUS / f"{clip_id}.gt.json").read_text())["mouth"]
    return np.stack([m["jaw_open"], m["lip_width"], m["lip_round"]], 1).astype(np.float32)


def indistinguishable_negatives(clips: list[Clip], neg: Negatives, eps: tuple[float, ...], n: int = 20000,
                                seed: int = 0) -> dict[float, float]:
    """eps -> share of negatives whose shown 5-frame mouth parameters are within eps (RMS) of their audio's."""
    rng, mouth = np.random.default_rng(seed), {c.clip_id: mouth_params(c.clip_id) for c in clips}
    dist = np.empty(n)
    for b in range(n):
        ci, t = random_window(clips, rng)
        cj, s = _negative_start(clips, ci, t, rng, neg)
        shown, driven = mouth[clips[ci].clip_id][t:t + 5], mouth[clips[cj].clip_id][s:s + 5]
        dist[b] = np.sqrt(((shown - driven) ** 2).mean())
    return {e: float((dist < e).mean()) for e in eps}


def oracle_pairs(clips: list[Clip], n: int, seed: int, neg: Negatives) -> tuple[torch.Tensor, torch.Tensor]:
    """Same sampling as lipforge.train.data.expert_batch, with mouth parameters in place of pixels."""
    rng, mouth = np.random.default_rng(seed), {c.clip_id: mouth_params(c.clip_id) for c in clips}
    x, y = [], []
    for b in range(n):
        ci, t = random_window(clips, rng)
        positive = b % 2 == 0
        cj, s = (ci, t) if positive else _negative_start(clips, ci, t, rng, neg)
        x.append(np.concatenate([mouth[clips[ci].clip_id][t:t + 5].ravel(), clips[cj].sync_mel(s).ravel() / 4]))
        y.append(float(positive))
    return torch.tensor(np.array(x)), torch.tensor(y)


def fit_mlp(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], epochs: int, loss_fn,
            score) -> list[tuple[int, float, float]]:
    """A one-hidden-layer MLP fitted with Adam; every 5 epochs (epoch, score on <= 2000 training rows, score on test)."""
    (xtr, ytr), (xte, yte) = train, test
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(256, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    curve = []
    for epoch in range(1, epochs + 1):
        net.train()
        for idx in torch.randperm(len(xtr)).split(128):
            loss = loss_fn(net(xtr[idx]).squeeze(1), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 0 or epoch == epochs:
            net.eval()
            with torch.no_grad():
                curve.append((epoch, *(score(net(x).squeeze(1), y) for x, y in ((xtr[:2000], ytr[:2000]), (xte, yte)))))
    return curve


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((logits > 0).float() == labels).float().mean())


def pearson_r(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(np.corrcoef(pred.numpy(), target.numpy())[0, 1])


def oracle_accuracy(train: list[Clip], test: list[Clip], neg: Negatives, epochs: int,
                    pairs: int) -> list[tuple[int, float, float]]:
    torch.manual_seed(0)
    return fit_mlp(oracle_pairs(train, pairs, 0, neg), oracle_pairs(test, 1000, 1, neg), epochs,
                   torch.nn.functional.binary_cross_entropy_with_logits, accuracy)


def frame_audio_and_opening(clips: list[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame whose own 16-mel window fits: mels (N, 1, 80, 16) and ground-truth jaw_open (N,)."""
    x, y = [], []
    for c in clips:
        jaw = mouth_params(c.clip_id)[:, 0]
        for t in range(min(usable_frames(len(c.frames), c.mel.shape[1]), len(jaw))):
            x.append(c.sync_mel(t)[None])
            y.append(jaw[t])
    return torch.tensor(np.array(x)), torch.tensor(np.array(y, dtype=np.float32))


@torch.no_grad()
def expert_audio_embeddings(expert_path: str, *mels: torch.Tensor) -> list[torch.Tensor]:
    """The expert's audio embeddings of each set of mel windows, every channel standardised with the statistics
    of the first set (as G_L's audio BatchNorm does)."""
    from lipforge.train.artifacts import load_expert

    expert = load_expert(expert_path)[0].eval()
    out = [expert.encode_audio(m) for m in mels]
    mean, std = out[0].mean(0), out[0].std(0) + 1e-8
    return [(e - mean) / std for e in out]


def audio_to_mouth_correlation(train: list[Clip], test: list[Clip], epochs: int,
                               expert_path: str | None = None) -> list[tuple[int, float, float]]:
    """Pearson r curve of the MLP regressor from the raw mel (scaled to ~[-1, 1], as the oracle's) or, with
    `expert_path`, from that expert's audio embeddings."""
    torch.manual_seed(0)
    (mtr, ytr), (mte, yte) = frame_audio_and_opening(train), frame_audio_and_opening(test)
    if expert_path:
        xtr, xte = expert_audio_embeddings(expert_path, mtr, mte)
    else:
        xtr, xte = mtr.flatten(1) / 4, mte.flatten(1) / 4
    return fit_mlp((xtr, ytr), (xte, yte), epochs, torch.nn.functional.mse_loss, pearson_r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=20000, help="training pairs of the oracle expert")
    ap.add_argument("--expert", help="also regress the mouth from this expert's audio embeddings (model.pt)")
    args = ap.parse_args()
    cfg = load_params().train_expert
    level = cfg.negative_silence_level if cfg.negative_silence_level is not None else -3.5
    everything = load_clips(FACE_DIR, MEL_INDEX, ("train", "val", "test"))
    print("silence:", json.dumps({k: round(v, 4) for k, v in silence_stats(everything, level, cfg.min_negative_shift).items()}))
    neg = Negatives(cfg.negative_other_clip_fraction, cfg.min_negative_shift, cfg.negative_silence_level)
    train, test = load_clips(FACE_DIR, MEL_INDEX, ("train",)), load_clips(FACE_DIR, MEL_INDEX, ("test",))
    for name, clips in (("train", train), ("test", test)):
        shares = indistinguishable_negatives(clips, neg, (0.02, 0.05, 0.1))
        print(f"{name} split, negatives {neg}: share within eps of their audio's mouth (accuracy bound): " + ", ".join(
            f"eps {e}: {v:.4f} ({1 - v / 2:.3f})" for e, v in shares.items()))
    print("oracle expert (ground-truth mouth parameters + mel, learned):")
    for epoch, tr, te in oracle_accuracy(train, test, neg, args.epochs, args.pairs):
        print(f"  epoch {epoch:3d}  train accuracy {tr:.3f}  test-speaker accuracy {te:.3f}")
    for expert in [None] + ([args.expert] if args.expert else []):
        print(f"audio-only mouth regressor ({expert or 'mel'} of each frame's 16-mel window -> ground-truth "
              "jaw_open), Pearson r:")
        for epoch, tr, te in audio_to_mouth_correlation(train, test, args.epochs, expert):
            print(f"  epoch {epoch:3d}  train r {tr:.3f}  test-speaker r {te:.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
