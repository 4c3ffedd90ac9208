"""Frame composition: an identity's photo -> a framed, moving, lit, articulating talking face.

A *plate* is prepared once per identity: the photo resampled so the face has the corpus face width,
eyes levelled, the face centred, the surroundings softly defocused (a portrait look that also keeps
the neighbours of a group photo from competing with the subject), and any area outside the photo
filled with a heavily blurred backdrop. Each frame then needs only one remap of the plate: head
motion (a similarity transform) and the mouth warp (piecewise affine over the lower-face landmarks)
are folded into a single backward map.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipforge.corpus import mouth
from lipforge.corpus.inner_mouth import paint_inner_mouth
from lipforge.corpus.faces import Identity
from lipforge.corpus.warp import apply_affine, invert_affine, piecewise_affine_map

FACE_CENTRE = (0.5, 0.52)  # where the face centre sits in the frame, as fractions of the frame size
PLATE_MARGIN = 1.5  # plate side / frame side: room for head motion without reaching the plate edge
SHARP_RADIUS = (1.0, 1.7)  # face widths from the centre where the background defocus starts / is full
BACKGROUND_BLUR = 0.012  # sigma of the defocus, in frame sizes
BACKDROP_BLUR = 0.05  # sigma of the out-of-photo backdrop, in plate sizes


@dataclass(frozen=True)
class Plate:
    identity: str
    image: np.ndarray  # (P, P, 3) RGB uint8
    landmarks: np.ndarray  # (68, 2) rest landmarks in plate pixels
    anchors: np.ndarray  # (A, 2) fixed outer ring of the mouth warp
    triangles: np.ndarray  # (K, 3) over mouth.control_points(landmarks, anchors)
    centre: np.ndarray  # (2,) face centre in plate pixels
    frame_size: int

    @property
    def rest_mouth_width(self) -> float:
        return float(np.linalg.norm(self.landmarks[54] - self.landmarks[48]))


def face_centre(landmarks: np.ndarray) -> np.ndarray:
    """Midway between the eyes' centre and the chin: about the nose tip, stable under expression."""
    eyes = landmarks[36:48].mean(axis=0)
    return (eyes + landmarks[8]) / 2


def face_width(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[16] - landmarks[0]))


def eye_roll(landmarks: np.ndarray) -> float:
    """Head roll in degrees (positive: the right eye on screen is lower)."""
    d = landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def make_plate(identity: Identity, photo: np.ndarray, frame_size: int, face_width_fraction: float) -> Plate:
    lm = identity.landmarks.astype(np.float64)
    k = face_width_fraction * frame_size / face_width(lm)
    if k < 1.0:  # area-average first: a bilinear warp would alias a 5x downscale
        photo = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        lm = (lm + 0.5) * k - 0.5
        k_rest = 1.0
    else:
        k_rest = k
    side = int(round(PLATE_MARGIN * frame_size / 2)) * 2
    centre_src = face_centre(lm)
    m = cv2.getRotationMatrix2D((float(centre_src[0]), float(centre_src[1])), eye_roll(lm), k_rest)
    m[:, 2] += np.array([side / 2, side / 2]) - centre_src
    interp = cv2.INTER_CUBIC if k_rest > 1.0 else cv2.INTER_LINEAR
    sharp = cv2.warpAffine(photo, m, (side, side), flags=interp, borderMode=cv2.BORDER_REFLECT101)
    inside = cv2.warpAffine(np.full(photo.shape[:2], 255, np.uint8), m, (side, side), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32) / 255.0
    landmarks = apply_affine(m, lm)
    centre = np.array([side / 2, side / 2])

    fw = face_width(landmarks)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    # an ellipse a little taller than wide (hair, neck), centred slightly above the face centre
    r = np.sqrt(((xs - centre[0]) / (0.9 * fw)) ** 2 + ((ys - centre[1] + 0.15 * fw) / (1.2 * fw)) ** 2)
    defocus = _smoothstep((r - SHARP_RADIUS[0]) / (SHARP_RADIUS[1] - SHARP_RADIUS[0]))[..., None]
    soft = cv2.GaussianBlur(sharp, (0, 0), BACKGROUND_BLUR * frame_size)
    image = sharp.astype(np.float32) * (1 - defocus) + soft.astype(np.float32) * defocus
    backdrop = cv2.GaussianBlur(sharp, (0, 0), BACKDROP_BLUR * side).astype(np.float32)
    feather = cv2.GaussianBlur(inside, (0, 0), 0.01 * side)[..., None] * inside[..., None]
    image = image * feather + backdrop * (1 - feather)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)

    anchors = mouth.anchor_ring(landmarks)
    return Plate(identity=identity.id, image=image, landmarks=landmarks.astype(np.float32), anchors=anchors,
                 triangles=mouth.triangulate(landmarks.astype(np.float32), anchors), centre=centre,
                 frame_size=frame_size)


def head_affine(plate: Plate, dx: float, dy: float, angle: float, scale: float) -> np.ndarray:
    """2x3 plate -> frame: rotate/scale about the face centre, put it at FACE_CENTRE + (dx, dy)."""
    m = cv2.getRotationMatrix2D((float(plate.centre[0]), float(plate.centre[1])), angle, scale)
    target = np.array(FACE_CENTRE) * plate.frame_size + (dx, dy)
    m[:, 2] += target - plate.centre
    return m


@dataclass(frozen=True)
class RenderedFrame:
    image: np.ndarray  # (S, S, 3) RGB uint8, before lighting
    landmarks: np.ndarray  # (68, 2) float32 frame pixels
    mouth_open_px: float


def render_frame(plate: Plate, jaw_open: float, lip_width: float, lip_round: float,
                 pose: tuple[float, float, float, float]) -> RenderedFrame:
    """One frame: mouth articulated, head posed; the landmarks are exactly where the warp put them."""
    moved = mouth.deform_landmarks(plate.landmarks, jaw_open, lip_width, lip_round)
    to_frame = head_affine(plate, *pose)
    src = mouth.control_points(plate.landmarks, plate.anchors)
    dst = apply_affine(to_frame, mouth.control_points(moved, plate.anchors))
    size = plate.frame_size
    map_x, map_y = piecewise_affine_map(dst, src, plate.triangles, (size, size), invert_affine(to_frame))
    image = cv2.remap(plate.image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    landmarks = apply_affine(to_frame, moved).astype(np.float32)
    rest_width = plate.rest_mouth_width * pose[3]
    image = paint_inner_mouth(image, landmarks, rest_width)
    return RenderedFrame(image=image, landmarks=landmarks, mouth_open_px=mouth.mouth_open_px(landmarks))
