"""The sample_corpus stage end to end on a tiny corpus: layout, determinism, splits, ground truth."""
import json
from pathlib import Path

import numpy as np
import pytest

from lipforge.corpus import faces
from lipforge.corpus.clip import plan_clips, speaker_schedule
from lipforge.corpus.visemes import BILABIALS, OPEN_VOWELS
from lipforge.hashing import file_sha256
from lipforge.media import probe, read_audio, read_video_frames
from lipforge.params import parse_params
from stages import sample_corpus

TINY = {"seed": 7, "ray": {"num_cpus": 2}, "sample_corpus": {"n_clips": 4, "frame_size": 128}}


@pytest.fixture(scope="module")
def corpus(ray_local, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "sample_corpus"
    sample_corpus.run(parse_params(TINY), out)
    return out


def _clips(root: Path) -> list[str]:
    return [line for s in ("train", "val", "test") for line in (root / f"{s}.txt").read_text().split()]


def test_lrs2_layout(corpus):
    keys = _clips(corpus)
    assert len(keys) == 4
    for key in keys:
        speaker, clip = key.split("/")
        assert speaker in faces.identity_ids() and clip.isdigit() and len(clip) == 5
        for suffix in (".mp4", ".txt", ".gt.json", ".landmarks.npy"):
            assert (corpus / speaker / f"{clip}{suffix}").is_file()
        first = (corpus / speaker / f"{clip}.txt").read_text().splitlines()[0]
        assert first.startswith("Text:  ") and first[7:].split()[0] in ("BIN", "LAY", "PLACE", "SET")
    meta = json.loads((corpus / "corpus.json").read_text())
    assert meta["seed"] == 7 and meta["params"]["n_clips"] == 4
    assert len(meta["identities"]) == 10
    assert {i["source"]["registry"] for i in meta["identities"]} == {"pypi"}
    for ident in meta["identities"]:
        assert ident["source"]["package"] and len(ident["source"]["sha256"]) == 64
        assert len(ident["face_box_xywh"]) == 4
    assert [f"{c['speaker']}/{c['clip']}" for c in meta["clips"]] == sorted(keys, key=[
        f"{c['speaker']}/{c['clip']}" for c in meta["clips"]].index)


def test_splits_are_disjoint_by_identity(corpus):
    speakers = {s: {line.split("/")[0] for line in (corpus / f"{s}.txt").read_text().split()}
                for s in ("train", "val", "test")}
    assert all(speakers.values()), "the interleaved assignment gives every split a clip"
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["val"] & speakers["test"])
    params = parse_params(TINY).sample_corpus
    assert speakers["val"] <= set(params.val_identities) and speakers["test"] <= set(params.test_identities)


def test_ground_truth_is_consistent_with_the_media(corpus):
    for key in _clips(corpus):
        base = corpus / key
        gt = json.loads(base.with_name(base.name + ".gt.json").read_text())
        info = probe(base.with_name(base.name + ".mp4"))
        frames = read_video_frames(base.with_name(base.name + ".mp4"), fps=25)
        landmarks = np.load(base.with_name(base.name + ".landmarks.npy"))
        n = gt["n_frames"]
        assert n == int(np.ceil(gt["n_samples"] / gt["sample_rate"] * gt["fps"] - 1e-9))
        assert info.n_frames == n and frames.shape == (n, 128, 128, 3) and info.sample_rate == 16000
        assert 2.0 <= gt["duration"] <= 4.0
        assert abs(len(read_audio(base.with_name(base.name + ".mp4"))) / 16000 - gt["duration"]) < 0.1
        assert landmarks.shape == (n, 68, 2) and landmarks.dtype == np.float32
        assert all(len(gt["mouth"][k]) == n for k in ("jaw_open", "lip_width", "lip_round", "mouth_open_px"))
        # phones tile the audio; speech does not start at 0; words are the transcript
        phones = gt["phones"]
        assert phones[0]["start"] == 0 and phones[-1]["end"] == pytest.approx(gt["duration"], abs=1e-5)
        assert all(a["end"] == pytest.approx(b["start"], abs=1e-6) for a, b in zip(phones, phones[1:]))
        assert phones[0]["phone"] == "SIL" and phones[0]["end"] >= 0.05
        assert " ".join(w["word"] for w in gt["words"]) == gt["text"]
        # mouth_open_px is the inner-lip gap of the landmark sidecar
        gap = np.mean([np.linalg.norm(landmarks[:, lo] - landmarks[:, up], axis=1)
                       for up, lo in ((61, 67), (62, 66), (63, 65))], axis=0)
        np.testing.assert_allclose(gap, gt["mouth"]["mouth_open_px"], atol=2e-3)


def _frames_in(gt: dict, labels: frozenset) -> list[int]:
    times = np.arange(gt["n_frames"]) / gt["fps"]
    return [i for i, t in enumerate(times)
            if any(p["phone"] in labels and p["start"] <= t < p["end"] for p in gt["phones"])]


def test_mouth_closes_for_bilabials_and_opens_for_open_vowels(corpus):
    closed, opened = [], []
    for key in _clips(corpus):
        base = corpus / key
        gt = json.loads(base.with_name(base.name + ".gt.json").read_text())
        jaw = np.array(gt["mouth"]["jaw_open"])
        closed += [jaw[i] for i in _frames_in(gt, BILABIALS)]
        opened += [jaw[i] for i in _frames_in(gt, OPEN_VOWELS)]
        silent = [i for i in range(gt["n_frames"]) if i / 25 < gt["phones"][0]["end"] - 0.1]
        assert all(jaw[i] < 0.02 for i in silent)
    assert closed and opened, "the tiny corpus should contain bilabials and open vowels"
    assert np.median(closed) < 0.1 and max(closed) < 0.3
    assert np.median(opened) > 0.5


def test_rendered_mouth_region_changes_between_closed_and_open(corpus):
    from matplotlib.path import Path as PolyPath

    for key in _clips(corpus)[:2]:
        base = corpus / key
        gt = json.loads(base.with_name(base.name + ".gt.json").read_text())
        frames = read_video_frames(base.with_name(base.name + ".mp4"))
        landmarks = np.load(base.with_name(base.name + ".landmarks.npy"))
        gap = np.array(gt["mouth"]["mouth_open_px"])
        i_open, i_closed = int(np.argmax(gap)), 0
        assert gap[i_open] > 5 and gap[i_closed] < 0.01
        # the inner-lip polygon of the open frame, looked at in both frames (same place, roughly)
        ys, xs = np.mgrid[0:128, 0:128]
        inside = PolyPath(landmarks[i_open, 60:68]).contains_points(
            np.stack([xs.ravel(), ys.ravel()], 1)).reshape(xs.shape)
        dark = lambda f: float((frames[f].mean(axis=2)[inside] < 70).mean())  # noqa: E731
        assert dark(i_open) > 0.3 and dark(i_open) > dark(i_closed) + 0.25, key


def test_two_runs_are_byte_identical(corpus, tmp_path):
    again = tmp_path / "sample_corpus"
    sample_corpus.run(parse_params(TINY), again)

    def digests(root: Path) -> dict:
        return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}

    first, second = digests(corpus), digests(again)
    assert len(first) == 4 * 4 + 4  # clip files + split lists + corpus.json
    assert first == second


def test_rerun_recreates_the_folder(ray_local, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    params = parse_params({**TINY, "sample_corpus": {"n_clips": 3, "frame_size": 128, "max_seconds": 2.5}})
    result = sample_corpus.run(params, out)
    assert not (out / "stale.txt").exists() and result["n_clips"] == 3


def test_plan_spreads_clips_over_identities_voices_and_rates():
    ids = [f"id{i}" for i in range(10)]
    speakers = speaker_schedule(ids, set(), 60, held_out_clips=6)
    plans = plan_clips(speakers, ["a", "b", "c", "d", "e"], [150, 170, 190], seed=1)
    assert [p.key for p in plans][:2] == ["id0/00001", "id1/00001"]
    per_id = {i: sum(p.speaker == i for p in plans) for i in ids}
    assert set(per_id.values()) == {6}
    assert {v: sum(p.voice == v for p in plans) for v in "abcde"} == dict.fromkeys("abcde", 12)
    assert {r: sum(p.rate_wpm == r for p in plans) for r in (150, 170, 190)} == dict.fromkeys((150, 170, 190), 20)
    assert len({(p.speaker, p.voice) for p in plans}) > 30  # an identity is not tied to one voice
    assert plans == plan_clips(speakers, ["a", "b", "c", "d", "e"], [150, 170, 190], seed=1)


def test_held_out_identities_get_their_quota_and_training_faces_share_the_rest():
    order = ["a", "v", "t", "b"]
    # 10 clips, 2 per held-out identity: 6 left for the 2 training identities, dealt round-robin
    assert speaker_schedule(order, {"v", "t"}, 10, held_out_clips=2) == ["a", "v", "t", "b", "a", "v", "t", "b",
                                                                         "a", "b"]
    # 11 clips: the odd one goes to the first training identity
    assert speaker_schedule(order, {"v", "t"}, 11, held_out_clips=2).count("a") == 4
    # too few clips for the quota and one clip per training face: plain round-robin, every split first
    assert speaker_schedule(order, {"v", "t"}, 3, held_out_clips=2) == ["a", "v", "t"]
    assert speaker_schedule(order, {"v", "t"}, 5, held_out_clips=2) == ["a", "v", "t", "b", "a"]


def _schedule(params) -> tuple[list[str], dict[str, str]]:
    ids = faces.identity_ids(tuple(params.photos))
    split_of = sample_corpus.identity_splits(ids, params)
    order = sample_corpus.interleave_splits(ids, split_of)
    held_out = set(params.val_identities) | set(params.test_identities)
    return speaker_schedule(order, held_out, params.n_clips, params.held_out_clips_per_identity), split_of


def test_default_corpus_deals_its_60_clips_round_robin_over_its_ten_faces():
    params = parse_params({}).sample_corpus
    speakers, split_of = _schedule(params)
    order = sample_corpus.interleave_splits(list(split_of), split_of)
    assert speakers == [order[i % 10] for i in range(60)]  # the assignment before held-out quotas existed


def test_many_training_faces_keep_twelve_test_clips():
    params = parse_params({"sample_corpus": {"n_clips": 100, "photos": list(faces.PHOTOS)}}).sample_corpus
    speakers, split_of = _schedule(params)
    per_split = {s: sum(split_of[x] == s for x in speakers) for s in ("train", "val", "test")}
    assert per_split == {"train": 82, "val": 6, "test": 12}
    assert {x for x in speakers if split_of[x] == "train"} == {i for i, s in split_of.items() if s == "train"}


def test_unknown_photo_is_a_clear_error(tmp_path):
    from lipforge.stage import StageError

    with pytest.raises(StageError, match="sample_corpus.photos: unknown photos \\['lena'\\]; known: astronaut"):
        sample_corpus.run(parse_params({"sample_corpus": {"photos": ["astronaut", "lena"]}}), tmp_path / "c")


def test_unknown_held_out_identity_is_a_clear_error():
    from lipforge.stage import StageError

    params = parse_params({"sample_corpus": {"test_identities": ["nobody"]}}).sample_corpus
    with pytest.raises(StageError, match="unknown identities.*nobody.*known: astronaut"):
        sample_corpus.identity_splits(faces.identity_ids(), params)
