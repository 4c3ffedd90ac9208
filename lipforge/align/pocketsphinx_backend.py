"""Offline phone-level forced alignment with pocketsphinx 5 (ships its en-us acoustic model + CMUdict).

Two decoding passes: `set_align_text` finds the word sequence's segmentation, `set_alignment` then
re-decodes at the phone/state level. Frames are 10 ms. Words missing from pocketsphinx's dictionary get
their pronunciation from the `cmudict` package (`add_word`), else the clip is rejected with the word.
"""
from __future__ import annotations

import numpy as np

from lipforge.align.lexicon import cmudict_pronunciations, normalize_word
from lipforge.align.types import AlignError, AlignResult, PhoneSpan
from lipforge.phonemes import SILENCE, normalize_phone

NAME = "pocketsphinx"
SAMPLE_RATE = 16000
FRAME_SECONDS = 0.01

def status() -> dict:
    try:
        import pocketsphinx
    except ImportError:
        return {"name": NAME, "available": False, "detail": "pocketsphinx not installed: pip install pocketsphinx"}
    return {"name": NAME, "available": True,
            "detail": f"pocketsphinx {getattr(pocketsphinx, '__version__', '5')} en-us model at "
                      f"{pocketsphinx.get_model_path()}"}


# Default pruning first (fast); if the word pass finds no path (seen on fast speech, e.g. 190 wpm
# "r four"), retry once with much wider beams rather than rejecting a clip that does match.
_WIDE_BEAMS = {"beam": 1e-120, "wbeam": 1e-100, "pbeam": 1e-120}


def _decoder(wide: bool = False):
    """A fresh decoder per clip (~0.1 s to build): a reused one carries state (feature/CMN history,
    added words) from earlier utterances, and which clips a Ray worker saw before then changed the
    alignment, so the same clip aligned differently between runs."""
    from pocketsphinx import Decoder

    # No language model: alignment only needs the dictionary and the acoustic model. Batch CMN:
    # the whole clip is known, so the cepstral mean is estimated from all of it, not warmed up live.
    return Decoder(lm=None, cmn="batch", loglevel="FATAL", **(_WIDE_BEAMS if wide else {}))


def _ensure_pronunciations(decoder, words: list[str]) -> None:
    for word in words:
        if decoder.lookup_word(word) is not None:
            continue
        prons = cmudict_pronunciations(word)
        if not prons:
            raise AlignError(f"word {word!r} is in neither pocketsphinx's dictionary nor CMUdict; "
                             "fix the transcript or add the word to the aligner's dictionary")
        for k, pron in enumerate(prons):
            decoder.add_word(word if k == 0 else f"{word}({k + 1})", " ".join(pron), update=k == len(prons) - 1)


def _to_pcm16(audio: np.ndarray) -> bytes:
    """16-bit PCM with a fixed +-1 LSB dither: digital silence (all-zero frames, e.g. padding) has a log
    energy of -inf and makes pocketsphinx fail the whole utterance. A seeded generator keeps it deterministic."""
    pcm = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767.0
    pcm += np.random.default_rng(0).normal(0.0, 1.0, size=pcm.shape)
    return np.clip(np.round(pcm), -32768, 32767).astype("<i2").tobytes()


def align(audio: np.ndarray, transcript: str) -> AlignResult:
    """Phones of `transcript` timed in `audio` (mono float32, 16 kHz)."""
    words = [normalize_word(w) for w in transcript.split()]
    words = [w for w in words if w]
    if not words:
        raise AlignError("empty transcript: nothing to align")
    if len(audio) < int(0.1 * SAMPLE_RATE):
        raise AlignError(f"audio too short to align ({len(audio) / SAMPLE_RATE:.3f} s)")
    pcm = _to_pcm16(audio)
    try:
        return _align_with(_decoder(), words, pcm, len(audio))
    except AlignError:
        return _align_with(_decoder(wide=True), words, pcm, len(audio))


def _align_with(decoder, words: list[str], pcm: bytes, n_samples: int) -> AlignResult:
    _ensure_pronunciations(decoder, words)
    try:
        decoder.set_align_text(" ".join(words))
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        found_words = hyp is not None and bool(hyp.hypstr.strip())
        if found_words:
            decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            alignment = decoder.get_alignment()
    except RuntimeError as err:
        raise AlignError(f"pocketsphinx alignment failed: {err}") from err
    if not found_words:
        raise AlignError("pocketsphinx found no word alignment: does the transcript match the audio?")
    phones = _phones_from_alignment(alignment, n_samples / SAMPLE_RATE) if alignment is not None else []
    if not any(p.phone != SILENCE for p in phones):
        raise AlignError("pocketsphinx returned no phone alignment: does the transcript match the audio?")
    return AlignResult(backend=NAME, phones=phones)


def _phones_from_alignment(alignment, duration: float) -> list[PhoneSpan]:
    spans: list[PhoneSpan] = []
    for phone in alignment.phones():
        label = normalize_phone(phone.name)
        start = phone.start * FRAME_SECONDS
        end = min((phone.start + phone.duration) * FRAME_SECONDS, duration)
        if spans and label == SILENCE and spans[-1].phone == SILENCE:
            spans[-1] = PhoneSpan(SILENCE, spans[-1].start, round(end, 4))
            continue
        spans.append(PhoneSpan(label, round(start, 4), round(end, 4)))
    if spans and spans[-1].end < duration:
        last = spans[-1]
        spans[-1] = PhoneSpan(last.phone, last.start, round(duration, 4))
    return spans

