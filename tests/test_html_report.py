"""report.html: written by every run, self-contained, capped for huge runs, and rendered by a real
headless browser (Chromium) into a non-blank page."""

import csv
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import CROWD_DEV, write_image
from maskmodel.outputs.html_report import MAX_GALLERY, MAX_REVIEW, MAX_REVIEW_LIST, build_html

CHROMIUM = Path("/usr/bin/chromium")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    photos = root / "photos"
    (photos / "b").mkdir(parents=True)
    (photos / "maksssksksss695.png").write_bytes((CROWD_DEV / "images" / "maksssksksss695.png").read_bytes())
    (photos / "b" / "crowd & co.png").write_bytes((CROWD_DEV / "images" / "maksssksksss148.png").read_bytes())
    write_image(photos / "wall.png", np.full((90, 120, 3), 200, np.uint8))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = root / "out"
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(out), "-q"])
    assert result.exit_code == 1, result.output  # broken.jpg
    return out


def test_page_is_self_contained_and_complete(run):
    page = (run / "report.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    tags = _tags(page)
    links = [attrs["href"] for tag, attrs in tags if tag == "a"]
    assert sorted(links) == ["b/crowd%20%26%20co.png", "maksssksksss695.png"]  # the images with faces
    with open(run / "report.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    review = [r for r in rows if r["status"] == "ok" and (r["label"] == "without_mask" or float(r[f"p_{r['label']}"]) < 0.75)]
    crops = [attrs["src"] for tag, attrs in tags if tag == "img" and attrs.get("src", "").startswith("data:image/jpeg")]
    assert len(crops) == min(len(review), MAX_REVIEW) > 0
    assert "broken.jpg" in page and "&lt;" not in "".join(links)
    written = (run / ".maskmodel" / "written.jsonl").read_text().splitlines()
    assert json.dumps("report.html") in written


def test_capped_for_huge_runs():
    """100,000 images: the page holds at most MAX_GALLERY thumbnails and MAX_REVIEW crops."""
    face = {"status": "ok", "face": "0", "x1": "10", "y1": "10", "x2": "30", "y2": "34", "score": "0.9",
            "label": "without_mask", "p_with_mask": "0.1", "p_without_mask": "0.9", "width": "100", "height": "80",
            "frame": "", "track": "", "message": ""}
    blocks = [[{**face, "path": f"d{i % 7}/{i}.jpg", "output": f"d{i % 7}/{i}.jpg"}] for i in range(100_000)]
    page = build_html(blocks, ["with_mask", "without_mask"], lambda path: None)
    tags = _tags(page)
    assert sum(tag == "img" for tag, _ in tags) == MAX_GALLERY
    assert sum(tag == "figure" for tag, _ in tags) == MAX_REVIEW
    assert "100000" in page.replace(",", "") and len(page) < 1_000_000


def _face(path: str, label: str, probability: float) -> list[dict]:
    other = "with_mask" if label == "without_mask" else "without_mask"
    return [{"status": "ok", "face": "0", "x1": "10", "y1": "10", "x2": "30", "y2": "34", "score": "0.9",
             "label": label, f"p_{label}": f"{probability:.4f}", f"p_{other}": f"{1 - probability:.4f}",
             "width": "100", "height": "80", "frame": "", "track": "", "message": "", "path": path, "output": path}]


def test_bidi_controls_in_names_are_shown_not_obeyed():
    """A right-to-left override in a file name ("photo<RLO>gpj.exe" reads as "photoexe.jpg") is shown as
    <U+202E> wherever the name appears, so no name can disguise itself."""
    name = "crowd/photo\u202egpj.exe.png"
    page = build_html([_face(name, "without_mask", 0.9)], ["with_mask", "without_mask"], lambda path: None)
    assert "\u202e" not in page
    assert "photo&lt;U+202E&gt;gpj.exe.png" in page


def test_review_queue_ranks_doubt_and_says_what_it_left_out():
    """Uncertain faces first (least sure first), then unmasked ones (least sure first); masked faces sure
    of their label never; beyond the crops a folded list, and a count of the rest."""
    rng = np.random.default_rng(0)
    sure_unmasked = [_face(f"x{i}.jpg", "without_mask", p) for i, p in enumerate(rng.uniform(0.76, 1.0, 150))]
    unsure = [_face(f"u{i}.jpg", label, p) for i, (label, p) in
              enumerate(zip(rng.choice(["with_mask", "without_mask"], 60), rng.uniform(0.5, 0.74, 60)))]
    masked = [_face(f"m{i}.jpg", "with_mask", p) for i, p in enumerate(rng.uniform(0.8, 1.0, 50))]
    blocks = sure_unmasked + masked + unsure
    page = build_html(blocks, ["with_mask", "without_mask"], lambda path: None)
    shown = [attrs["title"] for tag, attrs in _tags(page) if tag == "figure"]
    listed = re.findall(r'<tr><td><a href="([^"]+)">', page.split('<details class="review-list">')[1])
    probability = {rows[0]["path"]: float(rows[0][f"p_{rows[0]['label']}"]) for rows in blocks}
    assert len(shown) == MAX_REVIEW and len(listed) == 60 + 150 - MAX_REVIEW
    queue = shown + listed
    assert all(name.startswith("u") for name in queue[:60]) and all(name.startswith("x") for name in queue[60:])
    assert [probability[n] for n in queue[:60]] == sorted(probability[n] for n in queue[:60])
    assert [probability[n] for n in queue[60:]] == sorted(probability[n] for n in queue[60:])
    assert "210 faces qualified" in page and f"the next {210 - MAX_REVIEW} are listed below" in page
    assert "more are in report.csv" not in page  # all of them are on the page
    many = build_html(sure_unmasked * 10, ["with_mask", "without_mask"], lambda path: None)
    assert "1500 faces qualified" in many and f"{1500 - MAX_REVIEW - MAX_REVIEW_LIST} more are in report.csv" in many
    assert len(re.findall("<tr><td><a ", many)) == MAX_REVIEW_LIST


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium; CI does)")
def test_chromium_renders_the_page(run, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1000,1400", f"--screenshot={shot}", (run / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1400, 1000)
    assert (image.min(axis=2) < 200).mean() > 0.05  # text, cards and pictures, not a blank page
    photo = image[:, :, 2].astype(int) - image[:, :, 0].astype(int)
    assert image.std() > 30 and np.abs(photo).max() > 60  # colour: the thumbnails and crops were loaded
