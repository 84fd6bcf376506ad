"""The documentation builds (`mkdocs build --strict`, API pages from docstrings, example images from the
real pipeline) and every Python snippet in it runs."""

import re
import shutil
import subprocess
import sys

import pytest

from helpers import CROWD_DEV, ROOT

PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# docs/opencv.md's example takes command-line arguments: tests/test_opencv_examples.py runs it.
SNIPPETS = [(page, index, code) for page in PAGES if page.name != "opencv.md"
            for index, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))]


@pytest.mark.parametrize("page,index,code", SNIPPETS, ids=[f"{p.name}-{i}" for p, i, _ in SNIPPETS])
def test_python_snippet_runs(page, index, code, tmp_path):
    shutil.copy(CROWD_DEV / "images" / "maksssksksss148.png", tmp_path / "photo.jpg")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, f"{page.name} snippet {index}:\n{result.stderr[-2000:]}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_examples.py")], check=True, cwd=ROOT)
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("MaskDetector") > 0
    assert (tmp_path / "site" / "img" / "generated" / "annotated.png").is_file()
