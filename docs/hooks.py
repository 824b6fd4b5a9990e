"""MkDocs hooks for the learner's site (mkdocs.yml names this file).

Three small jobs, each something the Markdown in docs/ needs to read well both on GitHub and on the site:

- every Python file of the package, the examples and the benchmarks becomes a page under
  "Read the code", so that the docs' links to source files (`../../minicnn/layers/conv.py`)
  open the code on the site as they do in the repository;
- those links are rewritten to point at the pages;
- the formulas (`$...$`, `$$...$$`, kept as TeX by pymdownx.arithmatex) become MathML at build
  time, which every current browser draws: the site needs no JavaScript and no network for math.
"""
import ast
import html
import os
import posixpath
import re
from pathlib import Path

import latex2mathml.converter
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("minicnn", "examples", "benchmarks")  # folders whose .py files get a page
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")
MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\[(\[](.*?)\\[)\]]\s*</\1>', re.DOTALL)


def source_files():
    """The Python files that get a page, as paths relative to the repository: minicnn/layers/conv.py, ..."""
    return sorted(p.relative_to(ROOT).as_posix() for folder in SOURCES for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def page_of(path):
    """The site page of a source file: minicnn/layers/conv.py -> source/minicnn/layers/conv.py.md."""
    return f"source/{path}.md"


def summary(path):
    """The first line of a file's docstring, for the index of the code."""
    doc = ast.get_docstring(ast.parse((ROOT / path).read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n")[0]


def on_files(files, config):
    for path in source_files():
        code = (ROOT / path).read_text(encoding="utf-8")
        page = f"# {path}\n\n````python linenums=\"1\"\n{code}````\n"
        files.append(File.generated(config, page_of(path), content=page))
    rows = "\n".join(f"| [`{p}`]({p}.md) | {summary(p)} |" for p in source_files())
    index = ("# Read the code\n\nEvery Python file of minicnn, its examples and its benchmarks, as it is in the "
             "repository. Start with `minicnn/kernels/naive.py` (the textbook loops), then "
             "`minicnn/kernels/reference.py` (the same math on whole arrays) and a layer, say "
             "`minicnn/layers/conv.py`.\n\n| file | what it holds |\n| --- | --- |\n" + rows + "\n")
    files.append(File.generated(config, "source/index.md", content=index))
    return files


def on_page_markdown(markdown, page, config, files):
    """Links from docs/ to files outside it (the source, the notebooks' folder, the README) go to their page."""
    if page.file.abs_src_path is None or not page.file.src_uri.endswith(".md"):
        return markdown
    docs = Path(config["docs_dir"]).resolve()
    here = Path(page.file.abs_src_path).parent

    def rewrite(match):
        target = match.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        resolved = Path(os.path.normpath(here / target))
        if resolved.is_relative_to(docs) or not resolved.is_relative_to(ROOT):
            return match.group(0)
        rel = resolved.relative_to(ROOT).as_posix()
        if rel.endswith(".py") and rel.split("/")[0] in SOURCES and resolved.is_file():  # a page on_files made
            new = page_of(rel)
        elif rel.startswith("examples/notebooks/") and rel.endswith(".ipynb"):
            new = "notebooks/" + rel.removeprefix("examples/notebooks/")  # docs/notebooks links to that folder
        elif rel in ("examples/notebooks", "README.md"):
            new = "notebooks/01_seed_tutorial.ipynb" if rel.startswith("examples") else "index.md"
        else:
            return match.group(0)  # left as it is: MkDocs's strict build names it
        relative = posixpath.relpath(new, posixpath.dirname(page.file.src_uri) or ".")
        return f"{match.group(1)}{relative}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(rewrite, markdown)


def on_page_content(content, page, config, files):
    """TeX from pymdownx.arithmatex (generic mode) -> MathML, inline or as a displayed block."""
    def mathml(match):
        display = "block" if match.group(1) == "div" else "inline"
        return latex2mathml.converter.convert(html.unescape(match.group(2)), display=display)

    return MATH.sub(mathml, content)
