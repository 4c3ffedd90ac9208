"""Face detection, landmarks, cropping and crop storage for the face_crop stage.

- detectors: `load_backend`, `resolve_backend`, `backend_provenance`, `available_backends` (face_alignment
  S3FD+FAN when its weights are present, dlib HOG + 68-point predictor otherwise)
- geometry: pure box/landmark math (`fill_missing_boxes`, `smooth_boxes`, `crop_box`, `landmarks_to_crop`)
- crop: `crop_clip` (one clip's frames -> `CroppedClip`), `FacelessClipError`
- framestore: `write_frames`, `FrameStore.open(path).read_window(start, n)`, `benchmark_frame_store`
- clipmeta: the per-clip .npz of boxes and landmarks (`write_clip_meta`, `read_clip_meta`)
"""
from lipforge.face.clipmeta import read_clip_info, read_clip_meta, write_clip_meta
from lipforge.face.crop import CroppedClip, FacelessClipError, crop_clip
from lipforge.face.detectors import (FaceBackend, FaceBackendError, available_backends, backend_provenance,
                                     load_backend, resolve_backend)
from lipforge.face.framestore import CODECS, FrameStore, FrameStoreError, benchmark_frame_store, write_frames
from lipforge.face.geometry import crop_box, fill_missing_boxes, landmarks_to_crop, smooth_boxes

__all__ = [
    "CODECS", "CroppedClip", "FaceBackend", "FaceBackendError", "FacelessClipError", "FrameStore",
    "FrameStoreError", "available_backends", "backend_provenance", "benchmark_frame_store", "crop_box",
    "crop_clip", "fill_missing_boxes", "landmarks_to_crop", "load_backend", "read_clip_info", "read_clip_meta",
    "resolve_backend", "smooth_boxes", "write_clip_meta", "write_frames",
]
