import cv2
import numpy as np

from helpers import write_image
from maskmodel.training.data import load_dataset


def _face_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)
    return image


def test_duplicates_never_straddle_splits(tmp_path):
    root = tmp_path / "data"
    for index in range(30):
        label = "with_mask" if index % 2 else "without_mask"
        write_image(root / label / f"img{index}.png", _face_like(index))
    # an exact copy and a near copy (re-encoded as JPEG) of each of the first 6 images
    for index in range(6):
        label = "with_mask" if index % 2 else "without_mask"
        (root / label / f"copy{index}.PNG").write_bytes((root / label / f"img{index}.png").read_bytes())
        write_image(root / label / f"near{index}.Jpg", _face_like(index))
    samples, report = load_dataset([root], fractions=(0.5, 0.25, 0.25), seed=3)
    assert report.exact_duplicates == 6 and report.near_duplicates == 6
    assert len(samples) == 36  # exact copies kept once
    split_of_group = {}
    for sample in samples:
        assert split_of_group.setdefault(sample.group, sample.split) == sample.split
    assert {s.split for s in samples} == {"train", "val", "test"}


def test_given_layout_is_respected_and_duplicate_follows_test(tmp_path):
    for seed, (split, label) in enumerate((s, l) for s in ("train", "val", "test") for l in ("a", "b")):
        write_image(tmp_path / "given" / split / label / f"{split}{label}.png", _face_like(100 + seed))
    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    (other / "a" / "dup.png").write_bytes((tmp_path / "given/test/a/testa.png").read_bytes())
    write_image(other / "a" / "ünïcode näme.webp", _face_like(7))
    samples, report = load_dataset([tmp_path / "given", other])
    by_name = {s.path.name: s.split for s in samples}
    assert by_name["traina.png"] == "train" and by_name["vala.png"] == "val" and by_name["testb.png"] == "test"
    assert "dup.png" not in by_name and report.exact_duplicates == 1
    assert "ünïcode näme.webp" in by_name


def test_unreadable_files_are_reported_not_fatal(tmp_path):
    root = tmp_path / "data"
    write_image(root / "a" / "good.png", _face_like(1))
    write_image(root / "b" / "good.png", _face_like(2))
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "b" / "notes.png").write_text("this is text, not an image")
    samples, report = load_dataset([root])
    assert len(samples) == 2
    assert set(report.unreadable) == {str(root / "a" / "corrupt.jpg"), str(root / "b" / "notes.png")}
