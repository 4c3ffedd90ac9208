"""Montreal Forced Aligner backend: runs the `mfa` CLI on a one-clip temporary corpus.

MFA needs Kaldi (installed with conda: `conda install -c conda-forge montreal-forced-aligner`) and its
models (`mfa model download dictionary english_us_arpa`, `mfa model download acoustic english_us_arpa`).
It is available only when `mfa` is on PATH and `mfa version` succeeds; the pip wheel alone does not run.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from lipforge.align.textgrid import TextGridError, read_textgrid
from lipforge.align.types import AlignError, AlignResult, PhoneSpan
from lipforge.phonemes import SILENCE, normalize_phone

NAME = "mfa"
SAMPLE_RATE = 16000
UTTERANCE_ID = "utt"
TIMEOUT_S = 600


@lru_cache(maxsize=1)
def status() -> dict:
    exe = shutil.which("mfa")
    if exe is None:
        return {"name": NAME, "available": False,
                "detail": "mfa not on PATH (install: conda install -c conda-forge montreal-forced-aligner)"}
    try:
        proc = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"name": NAME, "available": False, "detail": f"{exe}: `mfa version` did not run ({err})"}
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"name": NAME, "available": False, "detail": f"{exe}: `mfa version` failed: {last[0]}"}
    return {"name": NAME, "available": True, "detail": f"{exe} (MFA {proc.stdout.strip()})"}


def write_corpus(corpus_dir: str | Path, audio: np.ndarray, transcript: str, utt_id: str = UTTERANCE_ID) -> Path:
    """<corpus_dir>/<utt_id>.wav (16-bit PCM, 16 kHz mono) + <utt_id>.lab (the transcript, one line)."""
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    wav_path = corpus_dir / f"{utt_id}.wav"
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    (corpus_dir / f"{utt_id}.lab").write_text(" ".join(transcript.split()) + "\n", encoding="utf-8")
    return wav_path


def phones_from_textgrid(path: str | Path, duration: float | None = None) -> list[PhoneSpan]:
    """The "phones" tier as contiguous ARPAbet spans; empty intervals (MFA's silence) become SIL."""
    try:
        tiers = read_textgrid(path)
    except (OSError, TextGridError) as err:
        raise AlignError(f"cannot read MFA output {path}: {err}") from err
    tier = tiers.get("phones")
    if tier is None:
        raise AlignError(f"MFA output {path} has no 'phones' tier (tiers: {', '.join(tiers) or 'none'})")
    spans: list[PhoneSpan] = []
    for iv in tier:
        label = normalize_phone(iv.text) if iv.text.strip() else SILENCE
        if spans and label == SILENCE and spans[-1].phone == SILENCE:
            spans[-1] = PhoneSpan(SILENCE, spans[-1].start, iv.end)
        else:
            spans.append(PhoneSpan(label, iv.start, iv.end))
    if duration is not None and spans and spans[-1].end < duration:
        spans.append(PhoneSpan(SILENCE, spans[-1].end, duration)) if spans[-1].phone != SILENCE else \
            spans.__setitem__(-1, PhoneSpan(SILENCE, spans[-1].start, duration))
    return spans


def align(audio: np.ndarray, transcript: str, dictionary: str, acoustic_model: str) -> AlignResult:
    st = status()
    if not st["available"]:
        raise AlignError(f"mfa backend not available: {st['detail']}")
    with tempfile.TemporaryDirectory(prefix="lipforge_mfa_") as tmp:
        corpus, out = Path(tmp) / "corpus", Path(tmp) / "out"
        write_corpus(corpus, audio, transcript)
        cmd = [shutil.which("mfa"), "align", "--clean", "--single_speaker", "--temporary_directory",
               str(Path(tmp) / "work"), str(corpus), dictionary, acoustic_model, str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            raise AlignError(f"mfa align timed out after {TIMEOUT_S} s") from err
        grid = out / f"{UTTERANCE_ID}.TextGrid"
        if proc.returncode != 0 or not grid.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise AlignError(f"mfa align failed (exit {proc.returncode}): {tail[0]}; are the models downloaded? "
                             f"mfa model download dictionary {dictionary}; mfa model download acoustic {acoustic_model}")
        return AlignResult(backend=NAME, phones=phones_from_textgrid(grid, len(audio) / SAMPLE_RATE))
