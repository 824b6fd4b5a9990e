"""The learner's site (mkdocs.yml): it builds with warnings as errors and no broken links, its
formulas become MathML, its API reference and code pages exist, and every layer page ends with a
gradient check that runs and passes. The notebooks themselves run in tests/test_notebooks.py."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER_PAGES = sorted((ROOT / "docs" / "layers").glob("*.md"))


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize("page", LAYER_PAGES, ids=[p.stem for p in LAYER_PAGES])
def test_each_layer_page_ends_with_a_gradient_check_that_passes(page, tmp_path):
    text = page.read_text()
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    assert sections[-1].startswith("Check it yourself"), f"{page.name}: the last section is not the check"
    check = python_blocks(sections[-1])[-1]
    assert "gradcheck" in check and "assert" in check
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, f"{page.name}:\n{out.stderr[-3000:]}"


def test_every_layer_page_is_in_the_site_and_has_formulas():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in LAYER_PAGES:
        assert f"layers/{page.name}" in config, f"{page.name} is not in mkdocs.yml's nav"
        assert "$$" in page.read_text(), f"{page.name} has no displayed formula"


def test_math_and_links_are_rewritten_by_the_hooks(tmp_path):
    """The hook's two rewrites on their own, on a page that links to a source file."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.pop(0)
    html = hooks.on_page_content('<p><span class="arithmatex">\\(x^2 &lt; y\\)</span></p>'
                                 '<div class="arithmatex">\\[\\frac{a}{b}\\]</div>', None, None, None)
    assert "arithmatex" not in html and html.count("<math") == 2
    assert '<mo>&#x0003C;</mo>' in html and "<mfrac>" in html and 'display="block"' in html

    class Page:
        class file:
            abs_src_path = str(ROOT / "docs" / "layers" / "conv2d.md")
            src_uri = "layers/conv2d.md"

    md = hooks.on_page_markdown("[a](../../minicnn/layers/conv.py) [b](dense.md) [c](https://x.org/a.py) "
                                "[d](../../minicnn/nope.py) [e](../../examples/notebooks/03_backprop_by_hand.ipynb)", Page, {"docs_dir": str(ROOT / "docs")}, None)
    assert md == ("[a](../source/minicnn/layers/conv.py.md) [b](dense.md) [c](https://x.org/a.py) "
                  "[d](../../minicnn/nope.py) [e](../notebooks/03_backprop_by_hand.ipynb)")


@pytest.mark.slow
def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    # The notebooks render as committed here (tests/test_notebooks.py runs them); the README's
    # build command runs them too.
    env = {**os.environ, "MINICNN_DOCS_EXECUTE": "false", "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-5000:]
    assert not re.search(r"^WARNING", out.stderr, flags=re.MULTILINE), out.stderr[-5000:]

    conv = (site / "layers" / "conv2d" / "index.html").read_text()
    assert conv.count("<math") > 5 and "arithmatex" not in conv  # the formulas are MathML
    assert 'href="../../source/minicnn/layers/conv.py/"' in conv  # the link to the code opens its page
    assert (site / "source" / "minicnn" / "layers" / "conv.py" / "index.html").is_file()
    reference = (site / "reference" / "layers" / "index.html").read_text()
    assert "Conv2D" in reference and "(N, H, W, C)" in reference  # the docstrings, shapes included
    for notebook in (ROOT / "examples" / "notebooks").glob("*.ipynb"):
        assert (site / "notebooks" / notebook.stem / "index.html").is_file(), notebook.name
    index = (site / "search" / "search_index.json").read_text()
    assert "BatchNormalization" in index and "Write a layer of your own" in index
    leftover = [p for p in site.rglob("*.html") if re.search(r'href="[^"]*\.py"', p.read_text())]
    assert not leftover, f"links to .py files left in {leftover[:3]}"
