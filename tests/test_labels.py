"""Legible annotated copies: captions on dense crowd photos never overlap, stay inside the image, keep
off the legend and never cover a face box; small photos are enlarged as the captions need; options
reach the drawing."""

import dataclasses

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import CROWD_DEV
from maskmodel.drawing.draw import PALETTE, auto_enlarge, colour, draw_faces, label_layout
from maskmodel.drawing.labels import LabelStyle, caption, class_tags, place_labels
from maskmodel.pipeline import Face, MaskDetector

DENSE = [CROWD_DEV / "images" / f"maksssksksss{n}.png" for n in (518, 240, 695)]  # 83, 61, 28 annotated faces


@pytest.fixture(scope="module")
def crowd():
    detector = MaskDetector()
    return [(cv2.imread(str(path)), detector.detect(cv2.imread(str(path)))) for path in DENSE], detector.classes


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _drawn(box) -> tuple[int, ...]:
    """A face box as drawn: its corners rounded to whole pixels."""
    return tuple(round(v) for v in box)


@pytest.mark.parametrize("style", [LabelStyle(), LabelStyle(labels="full"), LabelStyle(labels="short", enlarge=3),
                                   LabelStyle(conf=False)])
def test_dense_crowd_labels_never_overlap(crowd, style):
    images, classes = crowd
    for image, faces in images:
        assert len(faces) >= 20  # dense enough to collide
        factor = auto_enlarge(image.shape, faces, classes, style)
        canvas = (round(image.shape[0] * factor), round(image.shape[1] * factor), 3)
        scaled, _, labels, _, legend = label_layout(canvas, faces, classes, dataclasses.replace(style, enlarge=factor))
        rects = [label.rect for label in labels]
        for i, a in enumerate(rects):
            assert 0 <= a[0] < a[2] <= canvas[1] and 0 <= a[1] < a[3] <= canvas[0]
            assert not _overlaps(a, legend.rect)
            assert not any(_overlaps(a, b) for b in rects[i + 1:]), (a, [b for b in rects[i + 1:] if _overlaps(a, b)])
        # most faces keep a caption (full captions are 5x wider than these faces, so fewer fit)
        assert len(labels) >= (0.9 if style.labels != "full" else 0.6) * len(faces)
        face_area = sum((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in scaled)
        covered = np.zeros(canvas[:2], bool)
        for x1, y1, x2, y2 in rects:
            covered[y1:y2, x1:x2] = True
        hidden = sum(covered[y1:y2, x1:x2].sum() for x1, y1, x2, y2 in map(_drawn, (f.box for f in scaled)))
        assert hidden == 0 < face_area  # old captions: on the neighbours
        # what is drawn is this layout: each caption's corner has its class colour
        drawn = draw_faces(image, faces, classes, style=style)
        assert drawn.shape == canvas
        for label in labels:
            x1, y1 = label.rect[:2]
            assert tuple(int(v) for v in drawn[y1, x1]) == colour(scaled[label.face].label, classes)


SIZES = [CROWD_DEV / "images" / f"maksssksksss{n}.png" for n in (518, 363, 240, 813, 230)]  # 400x225 .. 512x367


@pytest.mark.parametrize("scale", [1, 4])  # crowd photos as they are, and 4x larger (1600-2048 px)
def test_captions_never_cover_another_face(scale):
    detector = MaskDetector()
    factors, found = {}, {}
    for path in SIZES:
        image = cv2.imread(str(path))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else image
        faces = found[path.name] = detector.detect(image)
        factor = factors[path.name] = auto_enlarge(image.shape, faces, detector.classes, LabelStyle())
        canvas = (round(image.shape[0] * factor), round(image.shape[1] * factor), 3)
        scaled, _, labels, _, _ = label_layout(canvas, faces, detector.classes, LabelStyle(enlarge=factor))
        # most faces are captioned (the densest photo, 64 faces in 400 px, about 85 % with the detector's own
        # boxes); a caption that has no free spot is left out rather than laid over a face
        # (a lone face that fills the photo may have no free spot at all)
        assert len(faces) > 0 and (len(faces) < 5 or len(labels) >= 0.8 * len(faces)), path.name
        for label in labels:
            others = [_drawn(f.box) for i, f in enumerate(scaled) if i != label.face]
            assert not any(_overlaps(label.rect, box) for box in others), (path.name, label)
            own = _drawn(scaled[label.face].box)  # nor its own face, unless inside its top or bottom third
            third = (own[3] - own[1]) / 3
            inside = (own[1] <= label.rect[1] and label.rect[3] <= own[1] + third
                      or own[3] - third <= label.rect[1] and label.rect[3] <= own[3])
            assert not _overlaps(label.rect, own) or inside, (path.name, label)
        assert draw_faces(image, faces, detector.classes).shape == canvas
    if scale == 1:  # the dense photo at half its size (faces of 5 px) is enlarged, the one of five large faces is not
        image = cv2.imread(str(SIZES[0]))
        half = [dataclasses.replace(f, box=tuple(v / 2 for v in f.box)) for f in found[SIZES[0].name]]
        assert auto_enlarge((image.shape[0] // 2, image.shape[1] // 2, 3), half, detector.classes, LabelStyle()) > 1
        assert factors["maksssksksss230.png"] == 1
    else:  # large photos stay as they are
        assert set(factors.values()) == {1.0}


def test_place_labels_drops_what_cannot_fit():
    boxes = np.array([[40, 40, 50, 50]] * 30, dtype=float)  # 30 faces in one spot of a small image
    spots = place_labels(boxes, [(30, 12)] * 30, (100, 60))
    rects = [s[0] for s in spots if s]
    assert 0 < len(rects) < 30
    assert not any(_overlaps(a, b) for i, a in enumerate(rects) for b in rects[i + 1:])


def test_tags_and_colours_for_any_classes():
    classes = ["with_mask", "without_mask", "mask_incorrect", "helmet", "hat"]
    tags = class_tags(classes)
    assert tags["with_mask"] == "M" and tags["without_mask"] == "X" and tags["mask_incorrect"] == "I"
    assert len(set(tags.values())) == len(classes)
    assert colour("helmet", classes) == PALETTE[0] and colour("hat", classes) == PALETTE[1]
    assert caption("without_mask", 0.934, "short", True, tags) == "X .93"
    assert caption("helmet", 0.5, "full", False, tags, "#4") == "#4 helmet"
    face = Face((10.0, 10.0, 60.0, 60.0), 0.9, "helmet", {"helmet": 0.9, "hat": 0.1})
    drawn = draw_faces(np.zeros((100, 200, 3), np.uint8), [face], ["with_mask", "without_mask"])
    assert (drawn == np.array(colour("helmet", ["with_mask", "without_mask", "helmet"]), np.uint8)).all(axis=2).any()


def test_style_options_reach_the_annotated_copy(tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    (photos / "crowd.png").write_bytes(DENSE[2].read_bytes())
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "a"), "-q", "--enlarge", "2",
                                       "--labels", "full"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "b"), "-q", "--labels", "none",
                                       "--line-width", "3", "--enlarge", "2"])
    assert result.exit_code == 0, result.output
    original = cv2.imread(str(DENSE[2]))
    captioned, bare = cv2.imread(str(tmp_path / "a" / "crowd.png")), cv2.imread(str(tmp_path / "b" / "crowd.png"))
    assert captioned.shape[:2] == bare.shape[:2] == (2 * original.shape[0], 2 * original.shape[1])
    green = np.array(colour("with_mask", []), np.uint8)
    filled = lambda image: int((image == green).all(axis=2).sum())  # caption backgrounds and boxes
    assert filled(bare) < filled(captioned) / 3  # no captions: only the boxes (and the legend's square)
    bad = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "c"), "--labels", "tiny"])
    assert bad.exit_code == 2


def test_legend_keeps_off_faces():
    """A face in the top-left corner pushes the legend to another corner; captions keep off it."""
    face = Face((0.0, 0.0, 120.0, 120.0), 0.9, "without_mask", {"with_mask": 0.1, "without_mask": 0.9})
    _, _, labels, _, legend = label_layout((400, 600, 3), [face], ["with_mask", "without_mask"], LabelStyle(enlarge=1.0))
    assert legend.rect[:2] != (0, 0) and not _overlaps(legend.rect, face.box)
    assert labels and not _overlaps(labels[0].rect, legend.rect)


@pytest.mark.parametrize("number", [518, 240, 363, 230])
def test_crowd_copies_are_legible_at_100_percent(number):
    """crowd-dev's 400-px crowd photos were written at their size with 8-px caption text (issue 44): by default
    a copy is drawn large enough for captions of 12 px or more, beside 90 % of the faces; photos whose
    captions already are that large keep their size (230: five large faces)."""
    from maskmodel.evaluation.annotations import read_voc

    record = read_voc(CROWD_DEV / "annotations" / f"maksssksksss{number}.xml", CROWD_DEV / "images")
    faces = [Face(face.box, 1.0, face.label, {face.label: 0.97}) for face in record.faces]
    shape = cv2.imread(str(CROWD_DEV / "images" / f"maksssksksss{number}.png")).shape
    factor = auto_enlarge(shape, faces, ["with_mask", "without_mask"], LabelStyle())
    canvas = (round(shape[0] * factor), round(shape[1] * factor), 3)
    _, _, labels, scale, _ = label_layout(canvas, faces, ["with_mask", "without_mask"], LabelStyle(enlarge=factor))
    assert cv2.getTextSize("M .99", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] >= 12, (factor, scale)
    assert len(labels) >= 0.9 * len(faces)
    assert (factor == 1) == (number == 230)
