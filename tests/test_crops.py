import cv2
import numpy as np
import pytest

from maskmodel.classify.crops import CropPolicy, crop_face, expand_box, resize_image


def test_expand_box_square_with_margin():
    x1, y1, x2, y2 = expand_box((10, 20, 30, 60), CropPolicy(margin=0.25, square=True))
    assert (x2 - x1, y2 - y1) == (60, 60)  # longer side 40, plus 25 % on each side
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == (20, 40)


def test_expand_box_not_square_keeps_aspect():
    x1, y1, x2, y2 = expand_box((0, 0, 20, 40), CropPolicy(margin=0.0, square=False))
    assert (x2 - x1, y2 - y1) == (20, 40)


@pytest.mark.parametrize("box", [(5, 5, 25, 25), (-10, -10, 15, 15), (90, 80, 130, 120)])
def test_crop_face_shape_and_dtype(box):
    image = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    crop = crop_face(image, box, CropPolicy(), 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8


def test_crop_face_takes_the_right_pixels():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 40:60] = 255  # a white "face"
    crop = crop_face(image, (40, 40, 60, 60), CropPolicy(margin=0.0), 20)
    assert crop.min() == 255
    wider = crop_face(image, (40, 40, 60, 60), CropPolicy(margin=0.5), 40)
    assert wider[20, 20].min() == 255 and wider[2, 2].max() == 0


def test_crop_outside_image_raises():
    with pytest.raises(ValueError, match="overlaps the image"):
        crop_face(np.zeros((10, 10, 3), np.uint8), (50, 50, 60, 60), CropPolicy(margin=0.0), 8)


def test_resize_rule_area_when_shrinking_linear_when_enlarging():
    image = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    assert np.array_equal(resize_image(image, (10, 10)), cv2.resize(image, (10, 10), interpolation=cv2.INTER_AREA))
    assert np.array_equal(resize_image(image, (90, 90)), cv2.resize(image, (90, 90), interpolation=cv2.INTER_LINEAR))


def test_training_and_runtime_share_the_crop_function():
    import maskmodel.classify.classifier
    import maskmodel.training.data

    assert maskmodel.training.data.crop_face is crop_face
    assert maskmodel.classify.classifier.crop_face is crop_face


def test_training_crop_matches_runtime_crop():
    """The crop augmentation cuts from the cached context equals the runtime's crop of the same box."""
    from maskmodel.training.augment import runtime_crop
    from maskmodel.training.data import CONTEXT_MARGIN, CONTEXT_SIZE

    yy, xx = np.mgrid[0:300, 0:400]
    image = np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8)
    box, policy = (150.0, 100.0, 230.0, 200.0), CropPolicy(margin=0.2)
    context = crop_face(image, box, CropPolicy(margin=CONTEXT_MARGIN), CONTEXT_SIZE)
    from_context = runtime_crop(context, policy, 112).astype(int)
    direct = crop_face(image, box, policy, 112).astype(int)
    assert np.abs(from_context - direct).mean() < 3.0
