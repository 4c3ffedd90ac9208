"""Measure an aligner against the espeak ground-truth timeline on synthetic GRID sentences.

    python benchmarks/align_accuracy.py --sentences 20 --voices en-us en-us+m3 --rates 150 170 190
Prints boundary error mean/median/p95 (ms), the mean signed error, per-phone-class means and the
aligner's real-time factor.
"""
from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict

import numpy as np

from lipforge.align import AlignError, align, boundary_errors
from lipforge.align.metrics import _strip_edge_silence, align_labels, summarize_errors
from lipforge.corpus.grid import GRAMMAR
from lipforge.corpus.tts import synthesize

def grid_sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(slot) for slot in GRAMMAR) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=20)
    ap.add_argument("--voices", nargs="+", default=["en-us", "en-us+m3", "en-us+f2", "en-us+m1", "en-us+f4"])
    ap.add_argument("--rates", nargs="+", type=int, default=[150, 170, 190])
    ap.add_argument("--backend", default="pocketsphinx")
    ap.add_argument("--lead", type=float, default=0.3)
    args = ap.parse_args()
    errors, signed, by_phone, by_voice = [], [], defaultdict(list), defaultdict(list)
    align_s = audio_s = 0.0
    failures: list[str] = []
    for text in grid_sentences(args.sentences):
        for voice in args.voices:
            for rate in args.rates:
                utt = synthesize(text, voice, rate, lead_silence=args.lead, tail_silence=args.lead)
                t0 = time.perf_counter()
                try:
                    result = align(utt.audio, text.upper(), backend=args.backend)
                except AlignError as err:
                    failures.append(f"{text!r} {voice}@{rate}: {err}")
                    continue
                finally:
                    align_s += time.perf_counter() - t0
                audio_s += utt.duration
                ref = [{"phone": p.label, "start": p.start} for p in utt.phones]
                hyp = [p.to_dict() for p in result.phones]
                errors += boundary_errors(ref, hyp).errors_ms
                r, h = _strip_edge_silence(ref), _strip_edge_silence(hyp)
                for i, j in align_labels([p["phone"] for p in r], [p["phone"] for p in h]):
                    d = (h[j]["start"] - r[i]["start"]) * 1000
                    signed.append(d)
                    by_phone[r[i]["phone"]].append(abs(d))
                    by_voice[(voice, rate)].append(abs(d))
    print(f"alignment failures: {len(failures)}", *failures, sep="\n  ")
    print("boundaries:", summarize_errors(errors), f"mean signed (pred - ref) {np.mean(signed):+.1f} ms")
    print(f"real-time factor {align_s / audio_s:.4f} ({audio_s / align_s:.0f}x faster than real time; "
          f"{audio_s:.0f} s audio)")
    print("worst phones:", ", ".join(f"{p}={np.mean(v):.0f}ms(n={len(v)})" for p, v in
                                      sorted(by_phone.items(), key=lambda kv: -np.mean(kv[1]))[:10]))
    print("per voice/rate:", ", ".join(f"{v}@{r}={np.mean(e):.1f}" for (v, r), e in sorted(by_voice.items())))


if __name__ == "__main__":
    main()
