"""Manifest: every input clip lands in the manifest or in rejects, with the right reason."""
from pathlib import Path

import pandas as pd
import pytest

from lipforge.manifest.splits import assign_splits, hashed_split
from lipforge.manifest.transcripts import normalize_text, read_grid_align
from lipforge.params import parse_params
from stages import manifest as manifest_stage
from stages import scan_corpus
from tests import media_factory as mf


@pytest.fixture(scope="module")
def broken_corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """An LRS2-layout root with 3 good clips and one clip of each broken kind; returns root and expected reasons."""
    root = tmp_path_factory.mktemp("lrs2")
    for spk in ("spkA", "spkB", "spkC", "spkD"):
        (root / spk).mkdir()
    mf.good_clip(root / "spkA/00001.mp4", seed=1)
    mf.good_clip(root / "spkA/00002.mp4", seed=2)
    mf.good_clip(root / "spkB/00001.mp4", seed=3)
    expected = {}
    mf.truncate(mf.good_clip(root / "spkB/00002.mp4", seconds=2.0))
    expected["spkB/00002"] = "truncated"
    mf.good_clip(root / "spkC/00001.mp4", text=None)
    expected["spkC/00001"] = "missing_transcript"
    mf.good_clip(root / "spkC/00002.mp4", text="")
    expected["spkC/00002"] = "empty_transcript"
    (root / "spkC/00003.mp4").write_bytes(b"")
    (root / "spkC/00003.txt").write_text("Text:  SET RED\n")
    expected["spkC/00003"] = "unreadable"
    (root / "spkC/00004.mp4").write_bytes(b"this is not a video" * 100)
    (root / "spkC/00004.txt").write_text("Text:  SET RED\n")
    expected["spkC/00004"] = "unreadable"
    mf.audio_only(root / "spkD/00001.mp4")
    (root / "spkD/00001.txt").write_text("Text:  LAY GREEN\n")
    expected["spkD/00001"] = "no_video_stream"
    from lipforge.media import write_video
    write_video(root / "spkD/00002.mp4", mf.frames(30), 25, None)
    (root / "spkD/00002.txt").write_text("Text:  LAY GREEN\n")
    expected["spkD/00002"] = "no_audio_stream"
    mf.video_at_fps(root / "spkD/00003.mp4", fps=5, seconds=2.0)
    (root / "spkD/00003.txt").write_text("Text:  LAY GREEN\n")
    expected["spkD/00003"] = "unsupported_fps"
    write_video(root / "spkD/00004.mp4", mf.frames(30), 25, mf.tone(1.2, 8000), 8000)
    (root / "spkD/00004.txt").write_text("Text:  LAY GREEN\n")
    expected["spkD/00004"] = "unsupported_sample_rate"
    mf.good_clip(root / "spkD/00005.mp4", seconds=0.2)
    expected["spkD/00005"] = "too_short"
    (root / "spkD/00006.txt").write_text("Text:  LAY GREEN\n")
    expected["spkD/00006"] = "missing_video"
    return root, expected


def _params(root: Path, tmp: Path):
    return parse_params({"ray": {"num_cpus": 2}, "manifest": {"roots": [{"name": "t", "path": str(root)}]}})


def test_rejects_path_loses_nothing(broken_corpus, tmp_path, ray_local):
    root, expected = broken_corpus
    params = _params(root, tmp_path)
    parts = tmp_path / "parts"
    scan = scan_corpus.run(params, "t", parts_dir=parts)
    report = manifest_stage.run(params, parts_dir=parts, manifest_path=tmp_path / "m.parquet",
                                rejects_path=tmp_path / "r.parquet", report_path=tmp_path / "m.json")
    manifest, rejects = pd.read_parquet(tmp_path / "m.parquet"), pd.read_parquet(tmp_path / "r.parquet")
    assert sorted(manifest.clip_id) == ["spkA/00001", "spkA/00002", "spkB/00001"]
    got = dict(zip(rejects.clip_id, rejects.reason))
    assert got == expected
    assert len(set(got.values())) >= 8
    # Nothing lost: every file-level clip under the root is accounted for exactly once.
    stems = {f"{p.parent.name}/{p.stem}" for p in root.rglob("*") if p.suffix in (".mp4", ".txt")}
    assert stems == set(manifest.clip_id) | set(rejects.clip_id)
    assert report["rejected"] == len(expected) and scan["probed"] == len(stems) - 1
    row = manifest.set_index("clip_id").loc["spkA/00001"]
    assert row.transcript == "BIN BLUE AT F TWO NOW"
    assert row.n_frames == 30 and row.fps == 25 and row.source_sample_rate == 16000
    assert len(row.content_hash) == 64


def test_rescan_reuses_unchanged_files(broken_corpus, tmp_path, ray_local):
    root, _ = broken_corpus
    params = _params(root, tmp_path)
    parts = tmp_path / "parts"
    first = scan_corpus.run(params, "t", parts_dir=parts)
    again = scan_corpus.run(params, "t", parts_dir=parts)
    assert first["probed"] > 0 and again["probed"] == 0
    assert again["clips"] == first["clips"] and again["rejected"] == first["rejected"]


def test_splits_are_identity_disjoint():
    rows = [{"clip_id": f"s{i % 7}/{i}", "speaker": f"s{i % 7}", "listed_split": ""} for i in range(70)]
    rows[0]["listed_split"] = "test"  # speaker s0 is listed: all its clips follow
    splits, conflicts = assign_splits(rows, 0.2, 0.2)
    by_speaker = {}
    for r, s in zip(rows, splits):
        by_speaker.setdefault(r["speaker"], set()).add(s)
    assert all(len(s) == 1 for s in by_speaker.values())
    assert by_speaker["s0"] == {"test"} and not conflicts
    assert hashed_split("spk", 0.0, 0.0) == "train"
    assert hashed_split("spk", 0.0, 0.999) == "test"


def test_split_conflict_is_reported():
    rows = [{"clip_id": "a/1", "speaker": "a", "listed_split": "train"},
            {"clip_id": "a/2", "speaker": "a", "listed_split": "test"}]
    splits, conflicts = assign_splits(rows, 0.1, 0.1)
    assert splits == ["", ""] and conflicts == ["a/1", "a/2"]


def test_transcript_readers(tmp_path):
    assert normalize_text("  bin Blue, at F-two now! ") == "BIN BLUE AT F TWO NOW"
    align = tmp_path / "x.align"
    align.write_text("0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n35500 41000 at\n74500 75000 sil\n")
    assert read_grid_align(align) == "BIN BLUE AT"


def test_grid_and_folder_layouts(tmp_path, ray_local):
    grid = tmp_path / "grid"
    (grid / "s1").mkdir(parents=True)
    (grid / "align" / "s1").mkdir(parents=True)
    mf.good_clip(grid / "s1" / "bbaf2n.mpg.mp4", text=None).rename(grid / "s1" / "bbaf2n.mp4")
    (grid / "align" / "s1" / "bbaf2n.align").write_text("0 1000 sil\n1000 9000 bin\n9000 20000 blue\n")
    folder = tmp_path / "folder" / "alice"
    folder.mkdir(parents=True)
    mf.good_clip(folder / "talk.mp4", text=None)
    (folder / "talk.txt").write_text("hello there\n")
    params = parse_params({"manifest": {"roots": [{"name": "g", "path": str(grid), "layout": "grid"},
                                                  {"name": "f", "path": str(tmp_path / "folder"), "layout": "folder"}]}})
    parts = tmp_path / "parts"
    scan_corpus.run(params, "g", parts_dir=parts)
    scan_corpus.run(params, "f", parts_dir=parts)
    manifest_stage.run(params, parts_dir=parts, manifest_path=tmp_path / "m.parquet",
                       rejects_path=tmp_path / "r.parquet", report_path=tmp_path / "m.json")
    m = pd.read_parquet(tmp_path / "m.parquet").set_index("clip_id")
    assert m.loc["s1/bbaf2n"].transcript == "BIN BLUE"
    assert m.loc["alice/talk"].transcript == "HELLO THERE"
