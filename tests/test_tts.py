"""espeak-ng synthesis: determinism and a ground-truth timeline that matches the audio."""
import numpy as np
import pytest

from lipforge.corpus.tts import IPA_TO_ARPABET, TTSError, ipa_to_arpabet, synthesize
from lipforge.phonemes import PHONE_TO_ID, SILENCE

TEXT = "bin blue at f two now"


@pytest.fixture(scope="module")
def utt():
    return synthesize(TEXT, "en-us", 170)


def test_deterministic_bytes():
    a = synthesize("set red by a nine again", "en-us+f4", 150)
    b = synthesize("set red by a nine again", "en-us+f4", 150)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.phones == b.phones and a.words == b.words


def test_timeline_is_contiguous_and_covers_audio(utt):
    assert utt.sample_rate == 16000 and utt.audio.dtype == np.float32
    assert abs(float(np.max(np.abs(utt.audio))) - 0.9) < 1e-3
    assert utt.phones[0].start == 0.0
    assert abs(utt.phones[-1].end - len(utt.audio) / 16000) < 1e-6
    for a, b in zip(utt.phones, utt.phones[1:]):
        assert a.end == b.start and a.end > a.start
    assert all(p.label in PHONE_TO_ID for p in utt.phones)


def test_phones_and_words_match_the_text(utt):
    speech = [p.label for p in utt.phones if p.label != SILENCE]
    assert speech == ["B", "IH", "N", "B", "L", "UW", "AE", "T", "EH", "F", "T", "UW", "N", "AW"]
    assert [w.label for w in utt.words] == TEXT.upper().split()
    assert all(w.start < w.end for w in utt.words)


def test_silence_is_silent_and_speech_is_not(utt):
    """SIL spans longer than 30 ms are quiet; every vowel is loud (the timeline is on the audio)."""
    a, sr = utt.audio, utt.sample_rate
    peak_rms = np.sqrt(np.mean(a ** 2))
    for p in utt.phones:
        seg = a[int(p.start * sr):int(p.end * sr)]
        if p.label == SILENCE and p.end - p.start > 0.03:
            assert np.sqrt(np.mean(seg ** 2)) < 0.01 * peak_rms
        if p.label in ("IH", "UW", "AE", "EH", "AW"):
            assert np.sqrt(np.mean(seg ** 2)) > 0.5 * peak_rms


def test_stop_closure_belongs_to_the_stop(utt):
    """The second B ("blue") starts with its closure: a near-silent stretch before the release."""
    b2 = [p for p in utt.phones if p.label == "B"][1]
    sr = utt.sample_rate
    closure = utt.audio[int(b2.start * sr):int(b2.start * sr) + int(0.02 * sr)]
    assert np.sqrt(np.mean(closure ** 2)) < 0.01


def test_lead_and_tail_silence_shift_timings(utt):
    padded = synthesize(TEXT, "en-us", 170, lead_silence=0.25, tail_silence=0.5)
    assert abs(padded.duration - utt.duration - 0.75) < 1e-3
    assert padded.phones[0].label == SILENCE and padded.phones[-1].label == SILENCE
    first = next(p for p in padded.phones if p.label != SILENCE)
    ref = next(p for p in utt.phones if p.label != SILENCE)
    assert abs(first.start - ref.start - 0.25) < 1e-4
    assert abs(padded.words[0].start - utt.words[0].start - 0.25) < 1e-4


def test_rate_changes_duration():
    slow, fast = synthesize(TEXT, "en-us+m3", 150), synthesize(TEXT, "en-us+m3", 190)
    assert slow.duration > fast.duration * 1.1


def test_ipa_mapping_targets_the_table():
    for arpa in IPA_TO_ARPABET.values():
        assert all(p in PHONE_TO_ID for p in arpa)
    assert ipa_to_arpabet("ˈaʊ") == ("AW",) and ipa_to_arpabet("ɑːɹ") == ("AA", "R") and ipa_to_arpabet("_:") == ()
    with pytest.raises(TTSError, match="no ARPAbet mapping"):
        ipa_to_arpabet("ʘ")


def test_unknown_voice_is_an_actionable_error():
    with pytest.raises(TTSError, match="no voice"):
        synthesize(TEXT, "xx-nonexistent")
