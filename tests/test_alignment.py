"""FFHQ face alignment: the quad against its closed form, the warp against an analytic image,
and real faces (skimage's astronaut, the ffhq-samples-128 folder) re-measured by dlib."""
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from skimage import data

from alae.faces import landmarks as face_landmarks
from alae.faces.alignment import align_face, align_photo, eye_centres, face_quad, source_to_crop
from alae.faces.landmarks import DEFAULT_MIN_SCORE, AlignmentError, FaceLandmarker


def frontal_face(centre, angle, eye_distance, eye_to_mouth, seed=0):
    """[68, 2] landmarks of a face whose eye centres lie eye_distance apart along `angle`
    (radians, image coordinates) around `centre`, and whose mouth midpoint lies eye_to_mouth
    below the eye midpoint, perpendicular to the eyes. Points alignment ignores are random."""
    rng = np.random.default_rng(seed)
    across = np.array([np.cos(angle), np.sin(angle)])
    down = np.array([-np.sin(angle), np.cos(angle)])
    centre = np.asarray(centre, dtype=np.float64)
    landmarks = rng.uniform(-50, 50, (68, 2)) + centre
    ring = 4.0 * np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3 + 0.4)], axis=1)
    ring -= ring.mean(axis=0)  # an eye outline of six points whose mean is the eye centre
    landmarks[36:42] = centre - across * eye_distance / 2 + ring
    landmarks[42:48] = centre + across * eye_distance / 2 + ring
    mouth = centre + down * eye_to_mouth
    landmarks[48], landmarks[54] = mouth - across * 0.4 * eye_distance, mouth + across * 0.4 * eye_distance
    return landmarks, across, down


def expected_quad(centre, across, down, eye_distance, eye_to_mouth):
    """FFHQ's square for a frontal face: half side max(2 x eye distance, 1.8 x eye-to-mouth),
    centred 10% of the way from the eye midpoint to the mouth, sides along the eyes."""
    half = max(2.0 * eye_distance, 1.8 * eye_to_mouth)
    c = np.asarray(centre) + 0.1 * eye_to_mouth * down
    return np.stack([c - half * (across + down), c - half * across + half * down,
                     c + half * (across + down), c + half * across - half * down]), half


@pytest.mark.parametrize("eye_distance, eye_to_mouth, branch", [(60.0, 50.0, "eyes"), (30.0, 60.0, "mouth")])
@pytest.mark.parametrize("angle", [0.0, 0.3, -1.1])
def test_quad_is_ffhq_closed_form(eye_distance, eye_to_mouth, branch, angle):
    landmarks, across, down = frontal_face((400.0, 300.0), angle, eye_distance, eye_to_mouth)
    quad, half = expected_quad((400.0, 300.0), across, down, eye_distance, eye_to_mouth)
    assert half == (2.0 * eye_distance if branch == "eyes" else 1.8 * eye_to_mouth)
    np.testing.assert_allclose(face_quad(landmarks), quad, atol=1e-9)


def test_source_points_land_where_ffhq_puts_them():
    """Eye branch: eyes at 3/8 and 5/8 of the width; the centre at 0.1 x eye-to-mouth below them."""
    size, d, m = 1024, 60.0, 50.0
    landmarks, across, down = frontal_face((250.0, 220.0), 0.4, d, m)
    side = 4.0 * d
    eye_row = size * (0.5 - 0.1 * m / side) - 0.5
    mouth = (landmarks[48] + landmarks[54]) / 2
    mapped = source_to_crop(np.vstack([eye_centres(landmarks), mouth]), face_quad(landmarks), size)
    expected = [[size * 3 / 8 - 0.5, eye_row], [size * 5 / 8 - 0.5, eye_row], [size / 2 - 0.5, size * (0.5 + 0.9 * m / side) - 0.5]]
    np.testing.assert_allclose(mapped, expected, atol=1e-9)


def test_quad_corners_land_on_the_crop_corners_and_other_quads_are_refused():
    quad = face_quad(frontal_face((100.0, 90.0), 0.7, 20.0, 22.0)[0])
    np.testing.assert_allclose(source_to_crop(quad, quad, 8), [[-0.5, -0.5], [-0.5, 7.5], [7.5, 7.5], [7.5, -0.5]], atol=1e-9)
    with pytest.raises(ValueError, match="parallelogram"):
        source_to_crop(quad, quad + [[0, 0], [0, 0], [3, 0], [0, 0]], 8)


def test_degenerate_or_malformed_landmarks_are_refused():
    with pytest.raises(AlignmentError, match="no orientation"):
        face_quad(np.zeros((68, 2)))
    with pytest.raises(AlignmentError, match="68 finite"):
        align_face(Image.new("RGB", (32, 32)), np.zeros((5, 2)), 16)


class WaveField:
    """An analytic RGB image: per channel 128 + three 25-level sinusoids of one wavelength (pixels)."""

    def __init__(self, wavelength: float, seed: int = 0):
        rng = np.random.default_rng(seed)
        angles = rng.uniform(0, np.pi, (3, 3))
        self.k = 2 * np.pi / wavelength * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # [channel, wave, 2]
        self.phase = rng.uniform(0, 2 * np.pi, (3, 3))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """[..., 2] (x, y) -> [..., 3] float values in 128 +- 75."""
        waves = np.einsum("...d,cwd->...cw", points, self.k) + self.phase
        return 128.0 + 25.0 * np.sin(waves).sum(axis=-1)

    def image(self, width: int, height: int) -> Image.Image:
        y, x = np.mgrid[:height, :width]
        return Image.fromarray(np.uint8(np.rint(self(np.stack([x, y], axis=-1).astype(np.float64)))), "RGB")


def crop_pixel_sources(quad: np.ndarray, size: int) -> np.ndarray:
    """[size, size, 2]: the source point under each crop pixel centre, by PIL QUAD's bilinear map
    (corner 0 -> top-left, 1 -> bottom-left, 2 -> bottom-right, 3 -> top-right outer corner)."""
    v, u = (np.mgrid[:size, :size] + 0.5) / size
    u, v = u[..., None], v[..., None]
    return (quad[0] * (1 - u) * (1 - v) + quad[3] * u * (1 - v) + quad[2] * u * v + quad[1] * (1 - u) * v)


def warp_error(aligned, field: WaveField, keep: np.ndarray | None = None, margin: int = 3) -> float:
    """Largest |crop - field at the crop's source points| (0-255 levels) away from the crop's edges."""
    size = aligned.image.size[0]
    error = np.abs(np.asarray(aligned.image, np.float64) - field(crop_pixel_sources(aligned.quad, size))).max(axis=-1)
    inner = np.zeros((size, size), bool)
    inner[margin:-margin, margin:-margin] = True
    return float(error[inner & (True if keep is None else keep)].max())


def test_warp_inside_the_photo_equals_the_analytic_image():
    field = WaveField(wavelength=40.0)
    landmarks = frontal_face((150.0, 140.0), 0.2, 40.0, 45.0)[0]
    aligned = align_face(field.image(300, 300), landmarks, 64)  # 160 px side: no shrink, no padding
    np.testing.assert_allclose(aligned.quad, face_quad(landmarks), atol=1e-9)
    assert aligned.image.size == (64, 64) and aligned.image.mode == "RGB"
    assert warp_error(aligned, field) < 4.0
    # Half a crop pixel off (PIL's pixel-centre convention ignored) would be seen.
    assert warp_error(replace(aligned, quad=aligned.quad + 0.5 * 160 / 64), field) > 10.0


def test_warp_after_shrinking_keeps_the_quad_in_photo_coordinates():
    field = WaveField(wavelength=200.0)
    landmarks = frontal_face((610.0, 480.0), -0.25, 150.0, 165.0)[0]
    aligned = align_face(field.image(1201, 999), landmarks, 32)  # 600 px side: shrunk 9x, sizes not multiples of 9
    assert warp_error(aligned, field) < 4.0
    # FFHQ's own quad is off by the shrink's rounding and half-pixel shift, by a few source pixels.
    assert warp_error(replace(aligned, quad=face_quad(landmarks)), field) > 6.0


def test_padding_fills_outside_the_photo_with_its_own_colours():
    field = WaveField(wavelength=40.0)
    landmarks = frontal_face((60.0, 75.0), 0.1, 40.0, 45.0)[0]  # the quad leaves the photo at the top left
    photo = field.image(300, 300)
    aligned = align_face(photo, landmarks, 64)
    sources = crop_pixel_sources(aligned.quad, 64)
    assert (sources < 0).any(), "the test face must reach outside the photo"
    crop = np.asarray(aligned.image)
    pixels = np.asarray(photo)
    assert crop.min() >= pixels.min() - 1 and crop.max() <= pixels.max() + 1  # no black fill
    deep_inside = (sources >= 0.2 * 160).all(axis=-1) & (sources <= 300 - 0.2 * 160).all(axis=-1)
    assert warp_error(aligned, field, keep=deep_inside) < 4.0


def test_missing_landmark_model_names_the_package(monkeypatch):
    assert face_landmarks.predictor_path().name == "shape_predictor_68_face_landmarks.dat"
    monkeypatch.setattr(face_landmarks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AlignmentError, match="pip install face-recognition-models"):
        face_landmarks.predictor_path()


# Real faces -------------------------------------------------------------------------------

def crop_eyes(landmarker: FaceLandmarker, image: Image.Image) -> np.ndarray:
    """The eye centres [2, 2] dlib finds in an aligned crop (its most confident face)."""
    faces = landmarker.detect(np.asarray(image))
    assert faces, "dlib found no face in the aligned crop"
    return eye_centres(max(faces, key=lambda face: face.score).landmarks)


@pytest.fixture(scope="module")
def landmarker():
    return FaceLandmarker()


@pytest.fixture(scope="module")
def crop_landmarker():
    """For aligned crops, where the face fills the image: no upsampling needed."""
    return FaceLandmarker(upsample=0)


@pytest.fixture(scope="module")
def astronaut_1024(landmarker):
    faces = align_photo(Image.fromarray(data.astronaut()), landmarker, 1024)
    assert len(faces) == 1
    return faces[0]


def test_astronaut_has_one_face_and_the_patch_is_below_the_score_threshold(landmarker):
    faces = landmarker.detect(data.astronaut())
    assert len(faces) == 1
    left, top, right, bottom = faces[0].rect
    eyes = eye_centres(faces[0].landmarks)
    assert (eyes >= [left, top]).all() and (eyes <= [right, bottom]).all()
    with_patch = FaceLandmarker(min_score=0.0).detect(data.astronaut())  # dlib's own threshold
    assert len(with_patch) == 2 and min(face.score for face in with_patch) < DEFAULT_MIN_SCORE


def test_astronaut_eyes_land_where_the_quad_maps_them(astronaut_1024, crop_landmarker):
    assert astronaut_1024.image.size == (1024, 1024)
    found = crop_eyes(crop_landmarker, astronaut_1024.image)
    mapped = source_to_crop(astronaut_1024.eyes, astronaut_1024.quad, 1024)
    assert np.hypot(*(found - mapped).T).max() < 5.0  # measured 2.6 px


def test_astronaut_crop_is_ffhq_aligned(astronaut_1024, crop_landmarker):
    """dlib's landmarks on the crop meet FFHQ's definition: the crop is the square of side
    2 x max(2 x eye distance, 1.8 x eye-to-mouth) centred at eye midpoint + 0.1 x eye-to-mouth,
    with the eye-mouth axes level."""
    faces = crop_landmarker.detect(np.asarray(astronaut_1024.image))
    assert len(faces) == 1
    lm = faces[0].landmarks
    eye_left, eye_right = eye_centres(lm)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye, eye_to_mouth = eye_right - eye_left, (lm[48] + lm[54]) / 2 - eye_avg
    side = 2 * max(2 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    assert abs(side / 1024 - 1) < 0.02  # measured 0.3%
    np.testing.assert_allclose(eye_avg + 0.1 * eye_to_mouth, [511.5, 511.5], atol=6.0)  # measured 1.3 px
    axis = eye_to_eye + [eye_to_mouth[1], -eye_to_mouth[0]]
    assert abs(np.degrees(np.arctan2(axis[1], axis[0]))) < 1.5  # measured 0.3 degrees


def test_realigning_an_aligned_face_barely_moves_it(ffhq_samples_dir, crop_landmarker):
    """Align a few samples of ffhq-samples-128 (upsampled to 512 for dlib), then align the crops
    again: the second quad is the whole first crop and the eyes stay put (pixels at 1024)."""
    size, to_1024 = 512, 1024 / 512
    frame = np.array([[0, 0], [0, size], [size, size], [size, 0]]) - 0.5
    for path in sorted(ffhq_samples_dir.glob("*.png"))[:4]:
        sample = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        first = align_face(sample, max(crop_landmarker.detect(np.asarray(sample)), key=lambda f: f.score).landmarks, size)
        faces = crop_landmarker.detect(np.asarray(first.image))
        second = align_face(first.image, max(faces, key=lambda f: f.score).landmarks, size)
        assert np.abs(second.quad - frame).max() * to_1024 < 12.0, path.name  # measured <= 4.8 px
        moved = crop_eyes(crop_landmarker, second.image) - crop_eyes(crop_landmarker, first.image)
        assert np.hypot(*moved.T).max() * to_1024 < 8.0, path.name  # measured <= 3.8 px
