"""face_crop: box math, frame store, detector backends on a real talking-head video, the stage."""
from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

from lipforge.assets import fetch
from lipforge.face import (FaceBackendError, FacelessClipError, FrameStore, FrameStoreError, available_backends,
                           benchmark_frame_store, crop_box, crop_clip, fill_missing_boxes, landmarks_to_crop,
                           load_backend, read_clip_meta, resolve_backend, smooth_boxes, write_frames)
from lipforge.face.crop import detection_frames, face_found_mask, resize_crop
from lipforge.hashing import file_sha256
from lipforge.media import read_video_frames, write_video
from lipforge.params import FaceCropParams, Params, RayParams, parse_params

NAN = np.nan


def _col(values):
    """Boxes whose four coordinates all equal `values` (smoothing acts per column)."""
    return np.repeat(np.asarray(values, dtype=float)[:, None], 4, axis=1)


# ---------------------------------------------------------------- pure functions

def test_smooth_boxes_window3_shrinks_at_edges():
    out = smooth_boxes(_col([0, 3, 6, 0, 12]), 3)
    # t0, t4: radius 0 (edge); t1 = (0+3+6)/3, t2 = (3+6+0)/3, t3 = (6+0+12)/3
    np.testing.assert_allclose(out[:, 0], [0, 3, 3, 6, 12])


def test_smooth_boxes_window5():
    out = smooth_boxes(_col([0, 3, 6, 0, 12]), 5)
    # t1, t3: radius 1; t2: radius 2 = 21/5
    np.testing.assert_allclose(out[:, 2], [0, 3, 4.2, 6, 12])


def test_smooth_boxes_keeps_constant_motion_and_window1_is_identity():
    moving = _col(np.arange(7) * 2.0)
    np.testing.assert_allclose(smooth_boxes(moving, 5), moving)
    noisy = _col([5, 1, 9, 2])
    np.testing.assert_allclose(smooth_boxes(noisy, 1), noisy)


def test_smooth_boxes_rejects_even_window_and_nan():
    with pytest.raises(ValueError, match="odd"):
        smooth_boxes(_col([1, 2]), 4)
    with pytest.raises(ValueError, match="fill_missing_boxes"):
        smooth_boxes(_col([1, NAN]), 3)


def test_fill_missing_boxes_interpolates_and_holds_edges():
    boxes = np.array([[NAN] * 4, [10, 10, 20, 20], [NAN] * 4, [NAN] * 4, [16, 10, 26, 20], [NAN] * 4])
    out = fill_missing_boxes(boxes)
    np.testing.assert_allclose(out, [[10, 10, 20, 20], [10, 10, 20, 20], [12, 10, 22, 20], [14, 10, 24, 20],
                                     [16, 10, 26, 20], [16, 10, 26, 20]])


def test_fill_missing_boxes_without_any_detection_raises():
    with pytest.raises(ValueError, match="no frame"):
        fill_missing_boxes(np.full((3, 4), NAN))


def test_crop_box_pads_squares_and_centres():
    # w=20, h=40: side = round(40 * 1.2) = 48 around the centre (50, 50)
    assert crop_box((40, 30, 60, 70), 200, 200, 0.1) == (26, 26, 74, 74)


def test_crop_box_shifts_inside_the_image():
    assert crop_box((0, 0, 20, 40), 100, 100, 0.1) == (0, 0, 48, 48)  # centre (10, 20) -> left -14, top -4
    assert crop_box((90, 80, 100, 100), 100, 100, 0.0) == (80, 80, 100, 100)  # left 85 -> 80


def test_crop_box_larger_than_image_shrinks_to_shorter_side():
    # side min(200, 60, 80) = 60; left round(50-30) = 20, top 20 -> shifted up to 0
    assert crop_box((0, 0, 100, 100), 60, 80, 0.5) == (20, 0, 80, 60)


def test_landmarks_to_crop_pixel_centres():
    pts = np.array([[10, 20], [29.5, 39.5], [19.5, 29.5]])
    np.testing.assert_allclose(landmarks_to_crop(pts, (10, 20, 30, 40), 10), [[-0.25, -0.25], [9.5, 9.5], [4.5, 4.5]])


@pytest.mark.parametrize("side", [48, 192])  # shrinking (INTER_AREA) and enlarging (INTER_LINEAR)
def test_landmarks_to_crop_matches_resize_crop(side):
    # An image whose value is its x coordinate: after cropping and resizing, the value at crop pixel u is
    # the frame x that maps to u, so landmarks_to_crop(value) must give back u.
    frame = np.tile(np.arange(256, dtype=np.float32), (256, 1))[..., None].repeat(3, axis=2)
    box = (30, 40, 30 + side, 40 + side)
    crop = resize_crop(frame, box, 96)
    u = np.arange(10, 86)  # away from the border, where resize clamps
    pts = np.stack([crop[50, u, 0], np.full(len(u), 60.0)], axis=1)
    np.testing.assert_allclose(landmarks_to_crop(pts, box, 96)[:, 0], u, atol=1e-3)


def test_detection_frames_and_face_found_mask():
    assert np.flatnonzero(detection_frames(7, 3)).tolist() == [0, 3, 6]
    assert np.flatnonzero(detection_frames(8, 3)).tolist() == [0, 3, 6, 7]
    mask = detection_frames(7, 3)
    detected = np.array([1, 0, 0, 0, 0, 0, 1], dtype=bool)
    # skipped frames 1, 2 lie between a found (0) and a faceless (3) detect frame: not found
    assert face_found_mask(mask, detected).tolist() == [True, False, False, False, False, False, True]
    all_found = np.ones(7, dtype=bool)
    assert face_found_mask(mask, all_found & mask).all()


def test_params_face_crop_defaults_and_validation():
    fp = parse_params({"face_crop": {"detect_every": 2}}).face_crop
    assert (fp.img_size, fp.smooth_window, fp.detect_every, fp.detect_max_side) == (96, 5, 2, 480)
    with pytest.raises(ValueError, match="smooth_window"):
        parse_params({"face_crop": {"smooth_window": 4}})


# ---------------------------------------------------------------- frame store

def _smooth_frames(n=12, size=32):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([np.stack([(xx * 4 + t * 3) % 256, (yy * 4) % 256, np.full_like(xx, 40 + 10 * t)], -1)
                     for t in range(n)]).astype(np.uint8)


def test_raw_store_round_trip_is_exact_and_memory_mapped(tmp_path):
    frames = _smooth_frames()
    size = write_frames(tmp_path / "c.frames.npy", frames, "raw")
    store = FrameStore.open(tmp_path / "c.frames.npy")
    assert store.codec == "raw" and len(store) == 12 and store.shape == (12, 32, 32, 3)
    assert size == (tmp_path / "c.frames.npy").stat().st_size and size >= frames.nbytes
    np.testing.assert_array_equal(store.read_window(3, 5), frames[3:8])
    assert isinstance(store.array, np.memmap)
    np.testing.assert_array_equal(store.read_all(), frames)


def test_jpeg_store_round_trip_is_close_and_smaller(tmp_path):
    frames = _smooth_frames()
    size = write_frames(tmp_path / "c.frames.jpgs", frames, "jpeg", quality=95)
    store = FrameStore.open(tmp_path / "c.frames.jpgs")
    assert store.codec == "jpeg" and len(store) == 12 and store.shape == (12, 32, 32, 3)
    window = store.read_window(7, 5)
    assert window.dtype == np.uint8 and window.shape == (5, 32, 32, 3)
    assert np.abs(window.astype(int) - frames[7:12]).mean() < 3  # colours kept (no RGB/BGR swap)
    assert size < frames.nbytes


def test_store_survives_pickling_and_checks_bounds(tmp_path):
    write_frames(tmp_path / "c.frames.jpgs", _smooth_frames(), "jpeg")
    store = pickle.loads(pickle.dumps(FrameStore.open(tmp_path / "c.frames.jpgs")))
    assert store.read_window(0, 5).shape[0] == 5
    with pytest.raises(IndexError):
        store.read_window(8, 5)


def test_store_rejects_unknown_and_truncated_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"not frames at all")
    with pytest.raises(FrameStoreError, match="neither"):
        FrameStore.open(tmp_path / "junk")
    path = tmp_path / "c.frames.jpgs"
    write_frames(path, _smooth_frames(), "jpeg")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FrameStoreError, match="truncated"):
        len(FrameStore.open(path))
    with pytest.raises(FrameStoreError, match="codec"):
        write_frames(tmp_path / "x", _smooth_frames(), "png")


def test_benchmark_frame_store_reports_both_codecs(tmp_path):
    result = benchmark_frame_store(_smooth_frames(n=20, size=96), tmp_path, n_reads=20)
    assert result["raw"]["bytes_per_frame"] > 96 * 96 * 3 and result["raw"]["lossless"]
    assert result["jpeg"]["bytes_per_frame"] < result["raw"]["bytes_per_frame"]
    assert result["jpeg"]["psnr_db"] > 30


def test_meta_npz_is_byte_stable_across_times(tmp_path, monkeypatch):
    import time

    from lipforge.face.clipmeta import save_npz_deterministic

    arrays = {"boxes": np.arange(8.0).reshape(2, 4), "info": np.array('{"a": 1}')}
    save_npz_deterministic(tmp_path / "a.npz", arrays)
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # zipfile would stamp this into members
    save_npz_deterministic(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "b.npz") as z:
        np.testing.assert_array_equal(z["boxes"], arrays["boxes"])


# ---------------------------------------------------------------- backends

def test_auto_without_face_alignment_weights_picks_dlib(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert resolve_backend("auto") == "dlib"
    rows = {r["name"]: r for r in available_backends()}
    assert rows["dlib"]["available"] and rows["dlib"]["auto"]
    assert not rows["face_alignment"]["available"] and "s3fd-619a316812.pth" in rows["face_alignment"]["detail"]
    from lipforge.face.detectors import FaceAlignmentBackend
    with pytest.raises(FaceBackendError, match="backend: dlib"):
        FaceAlignmentBackend()


@pytest.mark.slow
def test_face_alignment_backend_is_wired_when_weights_exist(tmp_path, monkeypatch):
    """Random-weight files with the real names: checks construction and the call path (not accuracy),
    which cannot be tested offline otherwise."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(s3fd().state_dict(), checkpoints / "s3fd-619a316812.pth")
    torch.save(FAN(4).state_dict(), checkpoints / "2DFAN4-11f355bf06.pth.tar")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keep these fake hashes out of ~/.cache
    assert resolve_backend("auto") == "face_alignment"
    from lipforge.face.detectors import FaceAlignmentBackend
    backend = FaceAlignmentBackend(device="cpu")
    image = read_video_frames(fetch("carphone"))[0]
    box = backend.detect(image)
    assert box is None or box.shape == (4,)
    assert backend.landmarks(image, np.array([69.0, 46, 113, 100])).shape == (68, 2)
    prov = backend.provenance()
    assert prov["backend"] == "face_alignment" and {w["file"] for w in prov["weights"]} == {
        "s3fd-619a316812.pth", "2DFAN4-11f355bf06.pth.tar"}


@pytest.fixture(scope="module")
def carphone_frames():
    return read_video_frames(fetch("carphone"))


@pytest.fixture(scope="module")
def carphone_crop(carphone_frames):
    return crop_clip(carphone_frames, load_backend("dlib"), FaceCropParams())


def test_dlib_finds_the_face_on_carphone(carphone_crop):
    assert carphone_crop.frames.shape == (100, 96, 96, 3)
    assert carphone_crop.face_found.mean() >= 0.95


def test_carphone_landmarks_sit_where_a_face_crop_puts_them(carphone_crop):
    lm = carphone_crop.landmarks_crop
    mouth_y, eyes_y = lm[:, 48:68, 1].mean(axis=1), lm[:, 36:48, 1].mean(axis=1)
    assert (mouth_y > 48).all() and (eyes_y < 48).all()
    assert (lm[:, 36:48, 1] < 48).all()  # every eye point, not just the mean
    assert (lm[:, 8, 1] < 96).mean() >= 0.95  # the chin is inside the crop (dlib box extended)
    assert (lm[..., 0] > 0).all() and (lm[..., 0] < 96).all()


def test_carphone_crop_agrees_with_full_frame_landmarks(carphone_crop):
    # Mapping landmarks through the crop must match re-locating them: compare the mouth centre in the
    # crop to the full-frame mouth centre mapped by hand.
    t = 10
    x1, y1, x2, y2 = carphone_crop.crop_boxes[t]
    side = x2 - x1
    mouth_full = carphone_crop.landmarks[t, 48:68].mean(axis=0)
    expected = (mouth_full - [x1, y1] + 0.5) * 96 / side - 0.5
    np.testing.assert_allclose(carphone_crop.landmarks_crop[t, 48:68].mean(axis=0), expected)
    assert y2 - y1 == side


def test_detect_every_interpolates_boxes(carphone_frames):
    params = FaceCropParams(detect_every=4)
    clip = crop_clip(carphone_frames[:21], load_backend("dlib"), params)
    assert np.flatnonzero(clip.detect_frames).tolist() == [0, 4, 8, 12, 16, 20]
    assert np.isnan(clip.detected_boxes[1]).all() and not np.isnan(clip.boxes).any()
    assert clip.face_found.mean() >= 0.9


def test_large_frames_are_detected_downscaled(carphone_frames, carphone_crop):
    import cv2

    big = np.stack([cv2.resize(f, (704, 576), interpolation=cv2.INTER_LINEAR) for f in carphone_frames[:5]])
    clip = crop_clip(big, load_backend("dlib"), FaceCropParams(detect_max_side=176))
    # The detector saw ~176x144 frames; boxes come back in 704x576 pixels. HOG box sizes snap to its
    # pyramid's ~1.2x scale steps, so compare centres and sizes loosely and landmarks (full-res) tightly.
    big_boxes, small_boxes = clip.detected_boxes, carphone_crop.detected_boxes[:5] * 4
    centre = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    np.testing.assert_allclose(centre(big_boxes), centre(small_boxes), atol=24)  # ~12% of the face
    ratio = (big_boxes[:, 2] - big_boxes[:, 0]) / (small_boxes[:, 2] - small_boxes[:, 0])
    assert ((ratio > 0.75) & (ratio < 1.35)).all()
    np.testing.assert_allclose(clip.landmarks[:, 48:68].mean(axis=1),
                               carphone_crop.landmarks[:5, 48:68].mean(axis=1) * 4 + 1.5, atol=8)


def test_flat_frames_raise_faceless(tmp_path):
    frames = np.full((10, 96, 96, 3), 128, dtype=np.uint8)
    with pytest.raises(FacelessClipError, match="10/10 frames"):
        crop_clip(frames, load_backend("dlib"), FaceCropParams())


# ---------------------------------------------------------------- the stage (real video through Ray)

@pytest.fixture(scope="module")
def ray_cluster():
    from lipforge.parallel import ray_session

    with ray_session(RayParams(num_cpus=2)) as address:
        yield address


def _manifest(tmp_path, clips: dict[str, str]) -> str:
    rows = []
    for clip_id, video in clips.items():
        rows.append({"clip_id": clip_id, "speaker": clip_id.split("/")[0], "video_path": video, "n_frames": 100,
                     "fps": 25.0, "split": "train", "content_hash": file_sha256(tmp_path / video)})
    path = tmp_path / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return str(path)


def _run(tmp_path, params=None):
    from stages.face_crop import run

    params = params or Params(ray=RayParams(num_cpus=2))
    return run(params, manifest_path=tmp_path / "manifest.parquet", out_dir=tmp_path / "out",
               report_path=tmp_path / "report.json", project_root=tmp_path)


def test_stage_is_incremental_and_deterministic(tmp_path, ray_cluster):
    shutil.copy(fetch("carphone"), tmp_path / "a.mp4")
    shutil.copy(fetch("carphone"), tmp_path / "b.mp4")
    _manifest(tmp_path, {"spk1/00001": "a.mp4", "spk1/00002": "b.mp4"})
    first = _run(tmp_path)
    assert (first["clips_ok"], first["clips_processed"], first["clips_cached"]) == (2, 2, 0)
    assert first["backend"] == "dlib" and first["weights"][0]["file"] == "shape_predictor_68_face_landmarks.dat"

    out = tmp_path / "out"
    index = pd.read_parquet(out / "index.parquet")
    assert index["clip_id"].tolist() == ["spk1/00001", "spk1/00002"]
    assert set(index.columns) >= {"split", "n_frames", "img_size", "codec", "frames_path", "meta_path", "backend",
                                  "weights", "faceless_fraction"}
    row = index.iloc[0]
    store = FrameStore.open(out / row["frames_path"])
    assert len(store) == row["n_frames"] == 100 and store.read_window(0, 5).shape == (5, 96, 96, 3)
    meta = read_clip_meta(out / row["meta_path"])
    assert meta["landmarks"].shape == (100, 68, 2) and meta["landmarks_crop"].shape == (100, 68, 2)
    assert meta["boxes"].shape == meta["crop_boxes"].shape == (100, 4) and meta["face_found"].mean() >= 0.95
    # Same video under two ids, processed by separate tasks: identical crops and arrays (the .npz differs
    # only by the clip id in its info).
    a, b = (out / "clips" / "spk1" / f"{n}" for n in ("00001", "00002"))
    assert file_sha256(f"{a}.frames.npy") == file_sha256(f"{b}.frames.npy")
    meta_b = read_clip_meta(f"{b}.npz")
    for name in ("detected_boxes", "boxes", "crop_boxes", "landmarks", "landmarks_crop", "face_found"):
        np.testing.assert_array_equal(meta[name], meta_b[name])
    stamp = (out / index.iloc[0]["frames_path"]).stat().st_mtime_ns

    second = _run(tmp_path)
    assert (second["clips_processed"], second["clips_cached"], second["clips_ok"]) == (0, 2, 2)
    assert (out / index.iloc[0]["frames_path"]).stat().st_mtime_ns == stamp

    shutil.copy(fetch("carphone"), tmp_path / "c.mp4")
    _manifest(tmp_path, {"spk1/00001": "a.mp4", "spk2/00001": "c.mp4"})
    third = _run(tmp_path)
    assert (third["clips_processed"], third["clips_cached"], third["clips_removed"]) == (1, 1, 1)
    assert not (out / "clips" / "spk1" / "00002.frames.npy").exists()
    assert pd.read_parquet(out / "index.parquet")["clip_id"].tolist() == ["spk1/00001", "spk2/00001"]
    assert json.loads((tmp_path / "report.json").read_text())["clips_ok"] == 2

    # A params change recomputes everything, and the jpeg codec replaces the raw stores.
    jpeg = Params(ray=RayParams(num_cpus=2), face_crop=FaceCropParams(frame_codec="jpeg"))
    fourth = _run(tmp_path, jpeg)
    assert fourth["clips_processed"] == 2
    assert not (out / "clips" / "spk1" / "00001.frames.npy").exists()
    assert FrameStore.open(out / "clips" / "spk1" / "00001.frames.jpgs").codec == "jpeg"


def test_stage_rejects_faceless_and_unreadable_videos(tmp_path, ray_cluster):
    rng = np.random.default_rng(0)
    write_video(tmp_path / "noise.mp4", rng.integers(0, 256, (25, 96, 128, 3), dtype=np.uint8), fps=25)
    write_video(tmp_path / "flat.mp4", np.full((25, 96, 128, 3), 90, dtype=np.uint8), fps=25)
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video")
    _manifest(tmp_path, {"x/noise": "noise.mp4", "x/flat": "flat.mp4", "x/broken": "broken.mp4"})
    report = _run(tmp_path)
    assert (report["clips_ok"], report["clips_rejected"]) == (0, 3)
    rejects = pd.read_parquet(tmp_path / "out" / "rejects.parquet").set_index("clip_id")["reason"]
    assert "no face in 25/25 frames" in rejects["x/noise"] and "max_faceless_fraction" in rejects["x/flat"]
    assert rejects["x/broken"].startswith("unreadable video")
    assert len(pd.read_parquet(tmp_path / "out" / "index.parquet")) == 0
    # Rejects are cached too: a re-run does not decode them again.
    assert _run(tmp_path)["clips_processed"] == 0


def test_stage_reports_a_missing_manifest(tmp_path):
    from lipforge.stage import StageError

    with pytest.raises(StageError, match="manifest stage"):
        _run(tmp_path)
