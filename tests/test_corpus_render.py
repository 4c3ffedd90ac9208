"""Faces, GRID grammar, mouth geometry, warp and frame rendering of the sample corpus."""
import numpy as np
import pytest

from lipforge.corpus import faces, grid, mouth, render
from lipforge.corpus.visemes import VISEMES
from lipforge.corpus.warp import apply_affine, piecewise_affine_map, signed_areas

EXPECTED_IDS = ["astronaut", "grace_hopper", *(f"insightface_t1_{i}" for i in range(6)),
                "face_recognition_obama", "face_recognition_biden"]
FACE_API = {"face_api_sample1": 3, "face_api_sample2": 1, "face_api_sample3": 3, "face_api_sample4": 3,
            "face_api_sample5": 5, "face_api_sample6": 4}


@pytest.fixture(scope="module")
def identities():
    """Every face of every known photo (the default corpus's ten and the npm face-api group photos' 19)."""
    return {i.id: i for i in faces.load_identities()}


@pytest.fixture(scope="module")
def plates(identities):
    return {k: render.make_plate(i, faces.load_photo(i.asset), 256, 0.42) for k, i in identities.items()}


# ------------------------------------------------------------------------------------------- grid
def test_grid_sentences_follow_the_grammar():
    rng = np.random.default_rng(0)
    sentences = [grid.sample_sentence(rng) for _ in range(200)]
    assert all(grid.is_grid_sentence(s) for s in sentences)
    assert not any(s[3] == "w" for s in sentences)
    assert len(grid.LETTERS) == 25 and len(grid.DIGITS) == 10
    assert grid.transcript(["bin", "blue", "at", "f", "two", "now"]) == "BIN BLUE AT F TWO NOW"
    assert len({tuple(s) for s in sentences}) > 190  # 4*4*4*25*10*4 = 64000 sentences


# ------------------------------------------------------------------------------------------ faces
def test_identities_with_deterministic_ids(identities):
    from lipforge.params import parse_params

    assert faces.identity_ids(tuple(parse_params({}).sample_corpus.photos)) == EXPECTED_IDS  # the default ten
    face_api = [f"{a}_{i}" if n > 1 else a for a, n in FACE_API.items() for i in range(n)]
    assert list(identities) == EXPECTED_IDS + face_api
    for photo, n in [("insightface_t1", 6), *FACE_API.items()]:
        group = [identities[f"{photo}_{i}"].box[0] for i in range(n)] if n > 1 else []
        assert group == sorted(group)  # left to right
    for ident in identities.values():
        x, y, w, h = ident.box
        lm = ident.landmarks
        assert lm.shape == (68, 2) and w > 60
        # the landmarks belong to this box: the nose tip is inside it
        assert x <= lm[30, 0] <= x + w and y <= lm[30, 1] <= y + h


def test_the_astronaut_is_her_face_not_her_mission_patch(identities):
    x, y, w, h = identities["astronaut"].box
    assert y < 200  # the patch is at y ~ 335 in the 512 px photo


# ------------------------------------------------------------------------------------------ warp
def test_piecewise_affine_map_is_exact_for_a_translation():
    src = np.array([[10, 10], [60, 12], [35, 55], [70, 60]], float)
    tri = np.array([[0, 1, 2], [1, 3, 2]])
    dst = src + (3.0, 2.0)
    outside = np.array([[1, 0, -3.0], [0, 1, -2.0]])
    mx, my = piecewise_affine_map(dst, src, tri, (80, 90), outside)
    ys, xs = np.mgrid[0:80, 0:90]
    np.testing.assert_allclose(mx, xs - 3.0, atol=1e-4)
    np.testing.assert_allclose(my, ys - 2.0, atol=1e-4)


def test_piecewise_affine_map_hits_the_control_points():
    src = np.array([[0, 0], [40, 0], [0, 40], [40, 40], [20, 20]], float)
    dst = src.copy()
    dst[4] = (24, 18)  # move the centre point
    tri = np.array([[0, 1, 4], [1, 3, 4], [3, 2, 4], [2, 0, 4]])
    mx, my = piecewise_affine_map(dst, src, tri, (41, 41), np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    assert (mx[18, 24], my[18, 24]) == pytest.approx((20.0, 20.0), abs=1e-4)
    assert (mx[0, 40], my[0, 40]) == pytest.approx((40.0, 0.0), abs=1e-4)


# ----------------------------------------------------------------------------------------- mouth
def test_closed_mouth_has_exactly_zero_gap_and_open_mouth_the_designed_gap(plates):
    for plate in plates.values():
        rest = plate.landmarks
        width = plate.rest_mouth_width
        closed = mouth.deform_landmarks(rest, 0.0, 1.0, 0.0)
        assert mouth.mouth_open_px(closed) == pytest.approx(0.0, abs=1e-3)
        opened = mouth.deform_landmarks(rest, 1.0, 1.0, 0.0)
        _, _, v, _ = mouth.mouth_axes(rest)
        gaps = mouth.inner_gaps(opened, v)
        assert gaps[1] == pytest.approx(mouth.MAX_GAP * width, rel=1e-4)
        assert gaps[0] == pytest.approx(mouth.SIDE_GAP * gaps[1], rel=1e-3)


def test_only_the_lower_face_moves_and_the_chin_drops(plates):
    rest = plates["grace_hopper"].landmarks
    opened = mouth.deform_landmarks(rest, 1.0, 1.1, 0.0)
    np.testing.assert_array_equal(opened[17:48], rest[17:48])  # brows, nose, eyes
    _, _, v, width = mouth.mouth_axes(rest)
    chin_drop = (opened[8] - rest[8]) @ v
    assert chin_drop > 0.3 * width
    assert np.linalg.norm(opened[54] - opened[48]) == pytest.approx(
        1.1 * (1 - mouth.JAW_NARROWING) * width, rel=1e-3)


def test_rounding_narrows_the_lips(plates):
    rest = plates["astronaut"].landmarks
    spread = mouth.deform_landmarks(rest, *VISEMES["IY"].target)
    rounded = mouth.deform_landmarks(rest, *VISEMES["UW"].target)
    assert np.linalg.norm(rounded[54] - rounded[48]) < 0.75 * np.linalg.norm(spread[54] - spread[48])
    assert np.linalg.norm(rounded[64] - rounded[60]) < np.linalg.norm(rounded[54] - rounded[48]) * 0.8


def test_the_warp_never_folds_over_the_viseme_range(plates):
    targets = [np.array(v.target) for v in VISEMES.values()]
    # every viseme and every coarticulated half-way shape between two of them
    shapes = targets + [(a + b) / 2 for i, a in enumerate(targets) for b in targets[i + 1:]]
    for plate in plates.values():
        worst = min(float(signed_areas(mouth.control_points(mouth.deform_landmarks(plate.landmarks, *s),
                                                            plate.anchors), plate.triangles).min())
                    for s in shapes)
        # a fold smaller than a pixel cannot show in a 256 px frame
        assert worst > -1.0, f"{plate.identity}: a triangle folds ({worst:.2f} px^2)"


# ---------------------------------------------------------------------------------------- render
def _inner_lip_darkness(image, landmarks):
    from matplotlib.path import Path

    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    inside = Path(landmarks[60:68]).contains_points(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(xs.shape)
    return inside.sum(), float((image.mean(axis=2)[inside] < 60).mean()) if inside.any() else 0.0


def test_rendered_mouth_opens_dark_and_landmarks_follow(plates):
    plate = plates["face_recognition_obama"]
    pose = (2.0, -1.0, 1.5, 1.02)
    closed = render.render_frame(plate, 0.0, 1.0, 0.0, pose)
    opened = render.render_frame(plate, 0.9, 1.05, 0.0, pose)
    assert closed.mouth_open_px == pytest.approx(0.0, abs=1e-3)
    assert opened.mouth_open_px > 8
    n_closed, dark_closed = _inner_lip_darkness(closed.image, closed.landmarks)
    n_open, dark_open = _inner_lip_darkness(opened.image, opened.landmarks)
    assert n_closed == 0 and n_open > 50
    assert dark_open > 0.3
    # the eyes are where the head pose says: rest landmarks through the same similarity transform
    m = render.head_affine(plate, *pose)
    np.testing.assert_allclose(opened.landmarks[36:48], apply_affine(m, plate.landmarks[36:48]), atol=1e-3)
    # the frame is the face: the face width is 35-50 % of the frame
    face_w = np.linalg.norm(opened.landmarks[16] - opened.landmarks[0]) / plate.frame_size
    assert 0.35 <= face_w <= 0.5


def test_an_independent_detector_agrees_with_the_ground_truth_landmarks(plates):
    # dlib run on the rendered frame finds the same face and the same (moved) mouth
    for name in ("grace_hopper", "insightface_t1_0"):
        frame = render.render_frame(plates[name], 0.8, 1.05, 0.0, (3.0, 2.0, -2.0, 0.98))
        found = faces.detect_faces(frame.image)
        assert len(found) == 1
        pts = found[0][2]
        assert np.abs(pts - frame.landmarks).mean() < 3.0
        assert abs(mouth.mouth_open_px(pts) - frame.mouth_open_px) < 0.35 * frame.mouth_open_px
