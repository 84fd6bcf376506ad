"""`report.html`: one self-contained page summing up an annotate run, built from `report.csv`.

Totals and compliance per folder, a gallery of annotated copies (linked, at most `MAX_GALLERY`, the
images with the most unmasked faces first), a review queue ranked by doubt (faces whose label probability
is under `LOW_CONFIDENCE`, least sure first, then unmasked faces, least sure first: the first `MAX_REVIEW`
as crops of the input images embedded, the next `MAX_REVIEW_LIST` as a folded list, and how many more
qualified), histograms of face size and confidence, and a per-person table for videos. No network, no script: standard-library templating and inline SVG, so
the page stays small and fast for runs of any size (only the capped parts hold per-face content).
"""

from __future__ import annotations

import base64
import heapq
import html
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path, PurePosixPath
from string import Template
from urllib.parse import quote

import cv2
import numpy as np

from maskmodel.outputs.exports import (
    LOW_CONFIDENCE,
    box,
    is_video_block,
    probabilities,
    track_summary,
)
from maskmodel.io.imageio import ImageReadError, read_image
from maskmodel.outputs.report import STATUS_ERROR, STATUS_NO_FACE, original_path

HTML_NAME = "report.html"
MAX_GALLERY, MAX_REVIEW, MAX_REVIEW_LIST, MAX_TRACKS, MAX_ERRORS = 200, 100, 1000, 500, 100
SIZE_BINS = (0, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 100_000)  # face height, px
CONFIDENCE_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)  # label probability (3+ classes: under 0.5)
REVIEW_LABEL = "without_mask"

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>maskmodel report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#f3f5f7;border-radius:6px;padding:10px 16px}
.card b{display:block;font-size:22px}
.gallery,.review{display:flex;flex-wrap:wrap;gap:8px}
.gallery a{display:block;width:180px;font-size:11px;color:#444;text-decoration:none;word-break:break-all}
.gallery img{width:180px;height:120px;object-fit:contain;background:#eee;display:block}
.review-list{margin-top:8px}.review figure{margin:0;width:120px;font-size:11px;word-break:break-all}.review img{width:120px;height:120px;object-fit:contain;background:#eee}
.note{color:#666}svg text{font-size:10px;fill:#444}
</style></head><body>
<h1>maskmodel report</h1>
<p class="note">$setup</p>
<div class="cards">$cards</div>
<h2>By folder</h2>$folders
<h2>Annotated copies</h2><p class="note">$gallery_note</p><div class="gallery">$gallery</div>
<h2>Review queue</h2><p class="note">$review_note</p><div class="review">$review</div>$review_rest
<h2>Face size and confidence</h2>$histograms
<h2>Videos: people (tracks)</h2>$tracks
<h2>Errors</h2>$errors
</body></html>
""")


# Bidirectional-text controls (LRM, RLM, ALM, the embeddings, overrides and isolates): a file name holding
# one could show reversed text ("photo\u202egpj.exe" reads as "photoexe.jpg"); they are shown as <U+XXXX>.
BIDI_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def _e(value: object) -> str:
    """`value` as HTML text: escaped, bidirectional controls made visible."""
    return html.escape(BIDI_CONTROLS.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(value)), quote=True)


def _url(name: str) -> str:
    return quote(name, safe="/")


def _table(header: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return '<p class="note">none</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _histogram(title: str, bins: tuple[float, ...], values: list[float], labels: list[str]) -> str:
    """An inline SVG bar chart of `values` counted into `bins`."""
    counts = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)[0] if values else np.zeros(len(bins) - 1)
    top = max(int(counts.max()), 1)
    width, height, bar = 48 * len(counts) + 20, 160, 42
    parts = [f'<svg width="{width}" height="{height + 40}" role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="12">{_e(title)}</text>']
    for index, count in enumerate(counts):
        h = round(height * 0.8 * count / top)
        x = 10 + 48 * index
        parts.append(f'<rect x="{x}" y="{height - h}" width="{bar}" height="{h}" fill="#4a7fb5"></rect>'
                     f'<text x="{x}" y="{height - h - 3}">{int(count)}</text>'
                     f'<text x="{x}" y="{height + 14}">{_e(labels[index])}</text>')
    return "".join(parts) + "</svg>"


def _crop_uri(image: np.ndarray, face_box: tuple[float, ...], scale: float) -> str:
    x1, y1, x2, y2 = (v * scale for v in face_box)
    pad = 0.3 * max(x2 - x1, y2 - y1)
    height, width = image.shape[:2]
    region = image[max(0, int(y1 - pad)):min(height, int(y2 + pad)), max(0, int(x1 - pad)):min(width, int(x2 + pad))]
    if region.size == 0:
        return ""
    ok, data = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def _review_crops(chosen: list[dict], locate: Callable[[str], Path | None]) -> str:
    """Figures of the review faces, cut from their input images (read once each; `locate` maps a report
    path to its file, None when it cannot be read)."""
    by_path: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(chosen):
        by_path[original_path(row["path"])].append(index)
    uris = [""] * len(chosen)
    for relative, indices in by_path.items():
        path = locate(relative)
        try:
            image = read_image(path) if path is not None else None
        except ImageReadError:
            image = None
        for index in indices if image is not None else ():
            row = chosen[index]
            uris[index] = _crop_uri(image, box(row), image.shape[1] / float(row["width"]))
    figures = []
    for row, uri in zip(chosen, uris):
        confidence = probabilities(row).get(row["label"], float(row["score"]))
        picture = f'<img src="{uri}" alt="face {_e(row["face"])}">' if uri else "<div>(no copy)</div>"
        figures.append(f'<figure title="{_e(original_path(row["path"]))}">{picture}<figcaption>{_e(row["label"])} '
                       f'{confidence:.2f}<br>{_e(PurePosixPath(original_path(row["path"])).name)} #{_e(row["face"])}'
                       "</figcaption></figure>")
    return "".join(figures)


def _review_note(qualified: int, shown: int, listed: int) -> str:
    more = qualified - shown - listed
    return (f"{qualified} faces qualified: a label probability under {LOW_CONFIDENCE} (least sure first), then "
            f"{REVIEW_LABEL} (least sure first). The first {shown} are shown"
            + (f", the next {listed} are listed below" if listed else "")
            + (f"; {more} more are in report.csv" if more else "") + ".")


def _review_list(rows: list[dict]) -> str:
    """The review faces beyond the crops: a folded table, linked to their annotated copies."""
    if not rows:
        return ""
    cells = []
    for row in rows:
        path = original_path(row["path"])
        output = original_path(row["output"]) if row.get("output") else ""
        name = f'<a href="{_url(output)}">{_e(path)}</a>' if output else _e(path)
        confidence = probabilities(row).get(row["label"], float(row["score"]))
        cells.append(f"<tr><td>{name}</td><td>{_e(row['face'])}</td><td>{_e(row['label'])}</td>"
                     f"<td>{confidence:.2f}</td></tr>")
    return (f'<details class="review-list"><summary>the next {len(rows)} faces of the queue</summary><table>'
            "<tr><th>image</th><th>face</th><th>label</th><th>probability</th></tr>" + "".join(cells)
            + "</table></details>")


def build_html(blocks: list[list[dict]], classes: list[str], locate: Callable[[str], Path | None],
               setup: str = "") -> str:
    """The page of a report's blocks; `locate` maps a report path to its input file (for review crops)."""
    classes = list(classes) + sorted({r["label"] for rows in blocks for r in rows if r.get("label")} - set(classes))
    totals: Counter = Counter()
    per_folder: dict[str, Counter] = defaultdict(Counter)
    gallery: list[tuple[int, str, str, int]] = []
    review: list[tuple[int, float, int, dict]] = []
    sizes, confidences, errors, tracks = [], [], [], []
    for rows in blocks:
        path = original_path(rows[0]["path"])
        folder = str(PurePosixPath(path).parent)
        status = rows[0]["status"]
        video = is_video_block(rows)
        totals["videos" if video else "images"] += 1
        per_folder[folder]["videos" if video else "images"] += 1
        if status == STATUS_ERROR:
            totals["errors"] += 1
            errors.append([path, rows[0]["message"]])
            continue
        if status == STATUS_NO_FACE:
            totals["no_face"] += 1
            continue
        if video:
            people = track_summary(rows)
            totals["frames"] += len({r["frame"] for r in rows})
            tracks += [[path, t["track"], t["first_frame"], t["last_frame"], t["frames"], t["label"]] for t in people]
            labels = Counter(t["label"] for t in people if t["frames"] >= 2)
        else:
            labels = Counter(r["label"] for r in rows)
            if rows[0].get("output"):
                gallery.append((-labels.get(REVIEW_LABEL, 0), path, original_path(rows[0]["output"]), len(rows)))
        totals.update({f"label:{k}": v for k, v in labels.items()})
        per_folder[folder].update({f"label:{k}": v for k, v in labels.items()})
        for row in rows if not video else ():
            _, y1, _, y2 = box(row)
            sizes.append(y2 - y1)
            confidence = probabilities(row).get(row["label"], float(row["score"]))
            confidences.append(confidence)
            if row["label"] == REVIEW_LABEL or confidence < LOW_CONFIDENCE:
                # doubt first: uncertain faces (least sure first), then unmasked ones (least sure first)
                review.append((confidence >= LOW_CONFIDENCE, confidence, len(sizes), row))
    faces = sum(totals[f"label:{c}"] for c in classes)
    cards = [("images", totals["images"]), ("videos", totals["videos"]), ("video frames", totals["frames"]),
             ("faces (people in videos)", faces),
             *((c, totals[f"label:{c}"]) for c in classes),
             ("compliance", f"{totals['label:with_mask'] / faces:.1%}" if faces else "-"),
             ("images without faces", totals["no_face"]), ("errors", totals["errors"])]
    folder_rows = [[folder or ".", c["images"], c["videos"], *(c[f"label:{k}"] for k in classes),
                    f"{c['label:with_mask'] / n:.1%}" if (n := sum(c[f'label:{k}'] for k in classes)) else "-"]
                   for folder, c in sorted(per_folder.items())]
    shown = sorted(gallery)[:MAX_GALLERY]
    ranked = [item[-1] for item in heapq.nsmallest(MAX_REVIEW + MAX_REVIEW_LIST, review, key=lambda item: item[:3])]
    chosen, listed = ranked[:MAX_REVIEW], ranked[MAX_REVIEW:]
    return PAGE.substitute(
        setup=_e(setup),
        cards="".join(f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards),
        folders=_table(["folder", "images", "videos", *classes, "compliance"], folder_rows),
        gallery_note=_e(f"{len(shown)} of {len(gallery)} annotated images, most unmasked faces first"
                        + ("; all are listed in report.csv" if len(gallery) > len(shown) else "")),
        gallery="".join(f'<a href="{_url(out)}"><img src="{_url(out)}" loading="lazy" alt="{_e(path)}">'
                        f'{_e(path)} ({count})</a>' for _, path, out, count in shown),
        review_note=_e(_review_note(len(review), len(chosen), len(listed))),
        review=_review_crops(chosen, locate),
        review_rest=_review_list(listed),
        histograms=_histogram("face height (px)", SIZE_BINS, sizes,
                              [f"{a}-{b}" if b < 100_000 else f"{a}+" for a, b in pairwise(SIZE_BINS)])
        + _histogram("label probability", CONFIDENCE_BINS, confidences,
                     [f"{a:g}-{b:g}" for a, b in pairwise(CONFIDENCE_BINS)]),
        tracks=_table(["video", "track", "first frame", "last frame", "frames seen", "label"], tracks[:MAX_TRACKS])
        + (f'<p class="note">{len(tracks) - MAX_TRACKS} more in results.jsonl</p>' if len(tracks) > MAX_TRACKS else ""),
        errors=_table(["path", "message"], errors[:MAX_ERRORS]),
    )
