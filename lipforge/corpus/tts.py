"""Speech for the embedded sample corpus: espeak-ng audio with an exact ground-truth phone timeline.

The espeak-ng library shipped by the `espeakng-loader` wheel is driven through ctypes in synchronous
mode. Its phoneme events give each phoneme's output sample, but two of espeak's own conventions put
some events where an aligner (or a phonetician) would not put the boundary; both are corrected here
from what the synthesiser itself reports, not from guesses:

1. A phoneme's *pre-pause* (the closure of a stop, the gap before a word-initial vowel) is generated
   *before* that phoneme's event, so it would count as the end of the previous phone. The output
   hooks (`espeak_ng_SetOutputHooks`) tell, per output sample, whether the sample came from a pause,
   from the voiced (formant) generator or from a recorded unvoiced wave. The pause samples right
   before an event are given to the stop/affricate as its closure, or become a SIL unit otherwise.
2. A vowel after a nasal or liquid gets its event only after the vowel's first half (espeak plays the
   vowel's frames up to the vowel-centre frame, then fires the event). The real vowel onset is the
   start of the amplitude rise out of the sonorant's plateau; `_sonorant_vowel_onset` finds it on the
   synthesised samples (see there).

Determinism: espeak-ng keeps synthesiser state in C statics (pitch flutter phase, wave phase...) that
neither espeak_Terminate nor the random seed resets, so the same request gives different samples
depending on what the process spoke before. Each synthesis therefore runs in a fresh interpreter
(`python -m lipforge.corpus.tts`, ~0.1 s), where the first utterance is bit-reproducible. Inside that
process the library is initialised once and used under a lock (it is not re-entrant).
"""
from __future__ import annotations

import ctypes
import io
import json
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np

from lipforge.phonemes import SILENCE

ESPEAK_RATE_HZ = 22050
# espeak_AUDIO_OUTPUT and espeakINITIALIZE_* values from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_PARAM_RATE = 1
# Per-sample source classes reported by the output hooks.
_PAUSE, _VOICED, _UNVOICED = 0, 1, 2

# GRID letters are spoken as letter names; espeak would read "a" as the article, so each letter is
# synthesised from a spelling that espeak pronounces as the letter's name.
LETTER_NAMES = {
    "a": "eigh", "b": "bee", "c": "see", "d": "dee", "e": "ee", "f": "ef", "g": "gee", "h": "aitch",
    "i": "eye", "j": "jay", "k": "kay", "l": "el", "m": "em", "n": "en", "o": "oh", "p": "pee",
    "q": "cue", "r": "are", "s": "ess", "t": "tee", "u": "you", "v": "vee", "w": "double you",
    "x": "ex", "y": "why", "z": "zee",
}

# espeak-ng en-us IPA phoneme names (stress marks removed) -> ARPAbet sequences. A few espeak phonemes
# are two ARPAbet phones (r-coloured diphthongs, syllabic consonants): they are split evenly in time.
IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # monophthongs
    "i": ("IY",), "iː": ("IY",), "ɪ": ("IH",), "ᵻ": ("IH",), "ɛ": ("EH",), "e": ("EH",), "æ": ("AE",),
    "a": ("AE",), "ɑ": ("AA",), "ɑː": ("AA",), "ɒ": ("AA",), "ɔ": ("AO",), "ɔː": ("AO",),
    "ʌ": ("AH",), "ə": ("AH",), "ɐ": ("AH",), "ʊ": ("UH",), "u": ("UW",), "uː": ("UW",),
    # diphthongs
    "eɪ": ("EY",), "aɪ": ("AY",), "ɔɪ": ("OY",), "aʊ": ("AW",), "oʊ": ("OW",), "əʊ": ("OW",),
    # r-coloured vowels: the rhotic vowel is ER; vowel + r is the vowel then R
    "ɜː": ("ER",), "ɜ": ("ER",), "ɚ": ("ER",), "ɝ": ("ER",), "ɜːɹ": ("ER",), "əɹ": ("ER",),
    "ɑːɹ": ("AA", "R"), "ɑɹ": ("AA", "R"), "ɔːɹ": ("AO", "R"), "ɔɹ": ("AO", "R"), "oːɹ": ("AO", "R"),
    "ɛɹ": ("EH", "R"), "ɪɹ": ("IH", "R"), "ʊɹ": ("UH", "R"),
    # centring diphthongs: in en-us espeak writes the r that follows them as its own ɹ ("zero" = z iə ɹ oʊ)
    "iə": ("IH",), "eə": ("EH",), "ʊə": ("UH",), "aɪɚ": ("AY", "ER"), "aɪə": ("AY", "ER"), "aʊɚ": ("AW", "ER"),
    # syllabic consonants
    "əl": ("AH", "L"), "l̩": ("AH", "L"), "n̩": ("AH", "N"), "m̩": ("AH", "M"),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",),
    "ɾ": ("T",),  # the flap: CMUdict writes T (or D); both GRID flaps ("at", "white a") are /t/
    "ʔ": ("T",),  # glottal stop realises /t/ in en-us ("white")
    "tʃ": ("CH",), "dʒ": ("JH",), "f": ("F",), "v": ("V",), "θ": ("TH",), "ð": ("DH",), "s": ("S",),
    "z": ("Z",), "ʃ": ("SH",), "ʒ": ("ZH",), "h": ("HH",), "m": ("M",), "n": ("N",), "ŋ": ("NG",),
    "l": ("L",), "ɫ": ("L",), "ɹ": ("R",), "r": ("R",), "w": ("W",), "j": ("Y",), "ʍ": ("W",),
}
_STOPS = {"P", "B", "T", "D", "K", "G", "CH", "JH"}
# espeak's phNASAL and phLIQUID classes (w and j are liquids there): vowels after them fire late.
_NASALS = {"M", "N", "NG"}
_SONORANT_CONSONANTS = _NASALS | {"L", "R", "W", "Y"}
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@dataclass(frozen=True)
class TimedUnit:
    label: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # float32 mono, 16 kHz, peak-normalised to ~0.9
    sample_rate: int
    phones: list[TimedUnit]  # ARPAbet, stress removed, "SIL" for pauses; contiguous over [0, duration]
    words: list[TimedUnit]  # uppercase words
    voice: str
    rate_wpm: int
    espeak_phones: list[TimedUnit]  # raw espeak phoneme names at the espeak event times (provenance)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class TTSError(RuntimeError):
    """espeak-ng could not be loaded or could not speak the request."""


# ---------------------------------------------------------------------------------------------- ctypes
class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_SampleHook = ctypes.CFUNCTYPE(None, ctypes.c_short)
_PhoSymbolHook = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int)


class _OutputHooks(ctypes.Structure):
    _fields_ = [("outputPhoSymbol", _PhoSymbolHook), ("outputSilence", _SampleHook),
                ("outputVoiced", _SampleHook), ("outputUnvoiced", _SampleHook)]


class _Capture:
    """What one espeak_Synth call produced; the callbacks append here."""

    def __init__(self):
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, str | int]] = []  # (type, sample, phoneme name | word number)
        self.classes: list[int] = []


class _Engine:
    """The process's one initialised espeak-ng; every use goes through `lock`."""

    lock = threading.Lock()
    _instance: "_Engine | None" = None

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as err:
            raise TTSError("espeakng-loader is not installed: pip install espeakng-loader") from err
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path,
                                          _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT)
        if rate != ESPEAK_RATE_HZ:
            raise TTSError(f"espeak-ng initialisation failed (returned {rate}); reinstall espeakng-loader")
        self.capture = _Capture()
        # The CFUNCTYPE objects must outlive every synthesis: keep them on the engine.
        self._synth_cb = _SynthCallback(self._on_audio)
        self._hooks = _OutputHooks(_PhoSymbolHook(lambda code, kind: None),
                                   _SampleHook(lambda v: self.capture.classes.append(_PAUSE)),
                                   _SampleHook(lambda v: self.capture.classes.append(_VOICED)),
                                   _SampleHook(lambda v: self.capture.classes.append(_UNVOICED)))
        self.lib.espeak_SetSynthCallback(self._synth_cb)
        self.lib.espeak_ng_SetOutputHooks(ctypes.byref(self._hooks))
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]

    @classmethod
    def get(cls) -> "_Engine":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def _on_audio(self, wav, n_samples, events) -> int:
        if wav and n_samples > 0:
            self.capture.chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "replace")
                self.capture.events.append((_EVENT_PHONEME, ev.sample, name))
            elif ev.type == _EVENT_WORD:
                self.capture.events.append((_EVENT_WORD, ev.sample, ev.id.number))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate_wpm: int) -> _Capture:
        """Caller holds `lock`."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TTSError(f"espeak-ng has no voice {voice!r}; use e.g. 'en-us', 'en-us+m3', 'en-us+f2'")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
        self.lib.espeak_ng_SetRandSeed(0)  # frication noise uses espeak's own PRNG: same bytes every call
        self.capture = _Capture()
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise TTSError(f"espeak_Synth failed with status {status} for {text!r}")
        return self.capture


# ------------------------------------------------------------------------------------ pure timeline math
def strip_stress(ipa: str) -> str:
    return ipa.replace("ˈ", "").replace("ˌ", "")


def ipa_to_arpabet(ipa: str) -> tuple[str, ...]:
    """espeak IPA name -> ARPAbet phones; () for a pause. Raises on a name missing from the table."""
    name = strip_stress(ipa)
    if name == "" or set(name) <= {"_", ":", "!", "|"}:
        return ()
    if name not in IPA_TO_ARPABET:
        raise TTSError(f"espeak phoneme {ipa!r} has no ARPAbet mapping; add it to IPA_TO_ARPABET")
    return IPA_TO_ARPABET[name]


def _run_before(classes: np.ndarray, end: int, lower: int, cls: int) -> int:
    """Start of the run of `cls` samples that ends at `end` (exclusive), not going below `lower`."""
    i = end
    while i > lower and classes[i - 1] == cls:
        i -= 1
    return i


def _level_db(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Short-time level in dB (10 ms windows, 2.5 ms hop) and each window's centre sample."""
    hop, win = max(1, int(0.0025 * sr)), int(0.010 * sr)
    starts = np.arange(0, max(1, len(x) - win + 1), hop)
    level = np.array([10 * np.log10(np.mean(x[s:s + win].astype(np.float64) ** 2) + 1e-9) for s in starts])
    return level, starts + win // 2


def _sonorant_vowel_onset(audio: np.ndarray, sonorant_start: int, vowel_event: int, sr: int, nasal: bool) -> int:
    """The sample where a vowel following a nasal, liquid or glide really starts.

    espeak fires such a vowel's event after the vowel's first half, whose frames interpolate from the
    sonorant into the vowel, so the level rises towards the event. After a nasal the murmur is a flat,
    quieter plateau and the vowel starts where the level leaves it (last point within 1 dB of the
    median level of the nasal's first half). Liquids and glides have no plateau: the level rises all
    through them, and the boundary is put at the midpoint (in dB) of that transition, the usual
    hand-labelling convention for glide/liquid-vowel boundaries (TIMIT). Never earlier than 30 % into
    the sonorant, so a sonorant keeps a plausible minimum length.
    """
    span = audio[sonorant_start:vowel_event]
    if len(span) < int(0.03 * sr):
        return vowel_event
    level, centres = _level_db(span, sr)
    earliest = int(0.3 * len(level))
    if nasal:
        plateau = np.median(level[: max(1, len(level) // 2)])
        idx = len(level) - 1
        while idx > earliest and level[idx - 1] > plateau + 1.0:
            idx -= 1
    else:
        low = np.median(level[: max(1, int(0.3 * len(level)))])
        midpoint = (low + level[-1]) / 2
        above = np.nonzero(level[earliest:] >= midpoint)[0]
        idx = earliest + int(above[0]) if len(above) else len(level) - 1
    return sonorant_start + int(centres[idx])


def build_timeline(events: list[tuple[int, int, str | int]], classes: np.ndarray, audio: np.ndarray,
                   sr: int, n_words: int) -> tuple[list[tuple[str, int, int]], list[tuple[int, int]],
                                                   list[tuple[str, int, int]]]:
    """espeak events + per-sample source classes -> (phones, words, raw espeak phones), in samples.

    phones: contiguous (ARPAbet | SIL, start, end) covering [0, len(audio)).
    words: (start, end) of each word, start = its espeak word event moved to its first phone's start.
    """
    total = len(audio)
    raw = [(name, s) for kind, s, name in events if kind == _EVENT_PHONEME]
    raw_units = [(name, s, raw[i + 1][1] if i + 1 < len(raw) else total) for i, (name, s) in enumerate(raw)]

    # 1. one entry per ARPAbet phone (or pause) at its espeak event sample
    starts: list[list] = []  # [label, start]
    for name, s, e in raw_units:
        arpa = ipa_to_arpabet(name)
        if not arpa:
            starts.append([SILENCE, s])
            continue
        step = (e - s) / len(arpa)
        for k, p in enumerate(arpa):
            starts.append([p, int(round(s + k * step))])

    # 2. corrections (module docstring), each looking only at the espeak start of the phone before
    out: list[list] = []
    for i, (label, s) in enumerate(starts):
        prev_label = starts[i - 1][0] if i > 0 else SILENCE
        prev_start = starts[i - 1][1] if i > 0 else 0
        if label in _VOWELS and prev_label in _SONORANT_CONSONANTS:
            s = _sonorant_vowel_onset(audio, prev_start, s, sr, nasal=prev_label in _NASALS)
        if label != SILENCE and i > 0 and prev_label != SILENCE:
            pause_start = _run_before(classes, s, prev_start + 1, _PAUSE)
            if pause_start < s:
                if label in _STOPS:
                    s = pause_start  # the closure is part of the stop
                else:
                    out.append([SILENCE, pause_start])
        out.append([label, s])

    # 3. leading silence before the first phone, trailing pauses, contiguity, merge SIL runs
    if not out or out[0][1] > 0:
        out.insert(0, [SILENCE, 0])
    out[0][1] = 0
    merged: list[list] = []
    for label, s in out:
        if merged and merged[-1][0] == SILENCE and label == SILENCE:
            continue
        if merged and s <= merged[-1][1]:
            if label == SILENCE:
                continue
            s = merged[-1][1] + 1  # never zero-length
        merged.append([label, s])
    phones = [(lab, s, merged[i + 1][1] if i + 1 < len(merged) else total) for i, (lab, s) in enumerate(merged)]
    phones = [p for p in phones if p[2] > p[1]]

    # words: event sample -> the start of the first corrected phone at or after the event's phone
    word_events = [s for kind, s, _ in events if kind == _EVENT_WORD][:n_words]
    speech_end = max((e for lab, s, e in phones if lab != SILENCE), default=total)
    words = []
    for w, ev in enumerate(word_events):
        first = next((s for lab, s, e in phones if lab != SILENCE and e > ev), ev)
        words.append([first, None])
    for w in range(len(words)):
        nxt = words[w + 1][0] if w + 1 < len(words) else speech_end
        # a pause between words belongs to neither word
        sil_before_next = [s for lab, s, e in phones if lab == SILENCE and words[w][0] < s < nxt and e >= nxt]
        words[w][1] = sil_before_next[0] if sil_before_next else nxt
    return phones, [(s, e) for s, e in words], raw_units


# ---------------------------------------------------------------------------------------------- public
def speakable_text(words: list[str]) -> str:
    """GRID words -> the text espeak reads: single letters become letter-name spellings."""
    return " ".join(LETTER_NAMES.get(w.lower(), w.lower()) if len(w) == 1 else w.lower() for w in words)


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 170, sample_rate: int = 16000,
               lead_silence: float = 0.0, tail_silence: float = 0.0) -> Utterance:
    """Speak GRID-style `text` ("bin blue at f two now") and return audio + ground-truth timings."""
    words = text.split()
    if not words:
        raise TTSError("nothing to say: text is empty")
    if any(len(w) == 1 and w.lower() == "w" for w in words):
        raise TTSError("the letter 'w' is spoken as two words; GRID excludes it, and so does this corpus")
    native, events, classes = _speak_in_fresh_process(speakable_text(words), voice, rate_wpm)
    if len(native) == 0:
        raise TTSError(f"espeak produced no audio for {text!r}")
    if len(classes) != len(native):
        raise TTSError(f"espeak output hooks saw {len(classes)} samples but {len(native)} were produced")
    phones, word_spans, raw_units = build_timeline(events, classes, native, ESPEAK_RATE_HZ, len(words))
    if len(word_spans) != len(words):
        raise TTSError(f"espeak reported {len(word_spans)} words for {len(words)} in {text!r}")

    from scipy.signal import resample_poly  # imported here: the synthesis worker process must start fast

    audio = resample_poly(native.astype(np.float64), sample_rate, ESPEAK_RATE_HZ)
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = (0.9 * audio / peak).astype(np.float32)
    lead, tail = int(round(lead_silence * sample_rate)), int(round(tail_silence * sample_rate))
    audio = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(tail, np.float32)])
    duration = len(audio) / sample_rate
    shift = lead / sample_rate

    def seconds(native_sample: int) -> float:
        return round(native_sample / ESPEAK_RATE_HZ + shift, 6)

    phone_units = [TimedUnit(lab, seconds(s), seconds(e)) for lab, s, e in phones]
    if lead:
        phone_units = _prepend_silence(phone_units, shift)
    phone_units[-1] = TimedUnit(phone_units[-1].label, phone_units[-1].start, round(duration, 6))
    if tail and phone_units[-1].label != SILENCE:
        phone_units.append(TimedUnit(SILENCE, phone_units[-1].end - tail / sample_rate, round(duration, 6)))
        phone_units[-2] = TimedUnit(phone_units[-2].label, phone_units[-2].start, phone_units[-1].start)
    return Utterance(
        audio=audio, sample_rate=sample_rate, phones=phone_units,
        words=[TimedUnit(w.upper(), seconds(s), seconds(e)) for w, (s, e) in zip(words, word_spans)],
        voice=voice, rate_wpm=int(rate_wpm),
        espeak_phones=[TimedUnit(name, seconds(s), seconds(e)) for name, s, e in raw_units],
    )


def _speak_in_fresh_process(text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, list, np.ndarray]:
    """(native 22.05 kHz samples as float32, events, per-sample classes) from a new interpreter."""
    request = json.dumps({"text": text, "voice": voice, "rate_wpm": int(rate_wpm)})
    proc = subprocess.run([sys.executable, "-m", "lipforge.corpus.tts"], input=request.encode(),
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise TTSError(lines[-1].removeprefix("lipforge.corpus.tts.TTSError: "))
    data = np.load(io.BytesIO(proc.stdout), allow_pickle=False)
    events = [tuple(e) for e in json.loads(str(data["events"]))]
    return data["samples"].astype(np.float32), events, data["classes"]


def _worker_main() -> None:
    """`python -m lipforge.corpus.tts`: JSON request on stdin -> npz (samples, classes, events) on stdout."""
    req = json.loads(sys.stdin.buffer.read())
    with _Engine.lock:
        cap = _Engine.get().speak(req["text"], req["voice"], req["rate_wpm"])
        samples = np.concatenate(cap.chunks) if cap.chunks else np.zeros(0, np.int16)
        classes = np.asarray(cap.classes, dtype=np.int8)
        events = json.dumps(cap.events)
    buf = io.BytesIO()
    np.savez(buf, samples=samples.astype(np.int16), classes=classes, events=np.array(events))
    sys.stdout.buffer.write(buf.getvalue())


def _prepend_silence(units: list[TimedUnit], lead: float) -> list[TimedUnit]:
    first = units[0]
    if first.label == SILENCE:
        return [TimedUnit(SILENCE, 0.0, first.end), *units[1:]]
    return [TimedUnit(SILENCE, 0.0, lead), *units]


if __name__ == "__main__":
    _worker_main()
