"""README.md's module map ("What is inside") against the package: every module file of minicnn/
is named in the table's first column, every name there is a file that exists, and the classes
and functions the table lists are the package's, all of each family (layers, optimizers,
callbacks, schedules, metrics, losses, activations).

How the first column names files: each backticked name ends in ".py" (a module) or "/" (a
package: its __init__.py). A name that starts with "minicnn/" is a path from the repository's
root; any other is in the folder of the name before it in the same cell:
`minicnn/layers/conv.py`, `dense.py` names minicnn/layers/conv.py and minicnn/layers/dense.py.
"""
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minicnn"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def module_table(readme):
    """The rows of the first table under '## What is inside', as (first cell, second cell)."""
    section = re.search(r"^## What is inside\n(.*?)(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## What is inside' section"
    rows = [line for line in section.group(1).splitlines() if line.startswith("|")]
    assert len(rows) > 2, "the module table under '## What is inside' is empty"
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]  # after the header
    for cell in cells:
        assert len(cell) == 2, f"a row of the module table does not have two cells: {cell}"
    return cells


def named_files(first_cell):
    """The repository paths the first cell names (a package as its __init__.py)."""
    paths, folder = [], None
    for name in re.findall(r"`([^`]+)`", first_cell):
        if not name.endswith((".py", "/")):
            raise AssertionError(f"{name!r} in the module table is neither a module (.py) nor a package (/)")
        if name.startswith("minicnn/"):
            path = ROOT / name
        elif folder is None:
            raise AssertionError(f"{name!r} comes first in its cell, so it needs the full path from minicnn/")
        else:
            path = folder / name
        folder = path if name.endswith("/") else path.parent
        paths.append(path / "__init__.py" if name.endswith("/") else path)
    return paths


def module_of(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


README = (ROOT / "README.md").read_text()
ROWS = module_table(README)


def test_every_module_of_the_package_has_a_row_and_every_row_a_module():
    named = [path for first, _ in ROWS for path in named_files(first)]
    files = {path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    missing = sorted(str(path.relative_to(ROOT)) for path in files - set(named))
    unknown = sorted(str(path.relative_to(ROOT)) for path in set(named) - files)
    twice = sorted({str(path.relative_to(ROOT)) for path in named if named.count(path) > 1})
    assert not missing, f"README.md's module table does not name {missing}: add a row or name them in one"
    assert not unknown, f"README.md's module table names {unknown}, which do not exist"
    assert not twice, f"README.md's module table names {twice} more than once"


def test_the_classes_a_row_names_are_in_its_modules():
    """`Conv2D` in the layers' row must be a name of one of the modules that row names (a
    capitalised name: a class or a constant; MINICNN_BACKEND-style names are environment variables).
    A file that does not exist is the test above's failure, not this one's."""
    for first, second in ROWS:
        modules = [importlib.import_module(module_of(path)) for path in named_files(first)
                   if path.exists() and path.name != "__main__.py"]  # importing __main__ would run the command
        for name in re.findall(r"`([^`]+)`", second):
            if IDENTIFIER.match(name) and name[0].isupper() and not (name.isupper() and "_" in name):
                assert any(hasattr(m, name) for m in modules), \
                    f"README.md's module table lists {name} beside {first}, which do not define it"


def public(module, kind):
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__ and kind(obj)}


def subclasses_of(base):
    return lambda obj: inspect.isclass(obj) and issubclass(obj, base) and obj is not base


FAMILIES = {
    # module: the names the table must list, all of them
    "minicnn.layers": lambda m: set(m.__all__) - {"Layer"},
    "minicnn.optimizers": lambda m: public(m, subclasses_of(m.Optimizer)),
    "minicnn.callbacks": lambda m: public(m, subclasses_of(m.Callback)),
    "minicnn.schedules": lambda m: public(m, subclasses_of(m.LearningRateSchedule)),
    "minicnn.metrics": lambda m: public(m, subclasses_of(m.Metric)),
    "minicnn.losses": lambda m: {name for name in public(m, inspect.isfunction) if hasattr(m, name + "_gradient")},
    "minicnn.activations": lambda m: {name for name in public(m, inspect.isfunction) if hasattr(m, name + "_backward")},
}


@pytest.mark.parametrize("module_name", sorted(FAMILIES))
def test_the_table_lists_every_member_of_each_family(module_name):
    """All eight optimizers, not "Adam and SGD": a member added to the package without its name in
    the table fails here."""
    module = importlib.import_module(module_name)
    members = FAMILIES[module_name](module)
    assert members, f"no members found in {module_name}: the test's own rule is wrong"
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", "\n".join(second for _, second in ROWS)))
    assert not members - listed, f"README.md's module table does not list {sorted(members - listed)} of {module_name}"


def test_the_rule_of_the_first_column():
    assert named_files("`minicnn/layers/conv.py`, `dense.py`") == [PACKAGE / "layers" / "conv.py",
                                                                   PACKAGE / "layers" / "dense.py"]
    assert named_files("`minicnn/kernels/`, `reference.py`") == [PACKAGE / "kernels" / "__init__.py",
                                                                 PACKAGE / "kernels" / "reference.py"]
    assert module_of(PACKAGE / "kernels" / "__init__.py") == "minicnn.kernels"
    with pytest.raises(AssertionError, match="full path"):
        named_files("`conv.py`")
    with pytest.raises(AssertionError, match="neither"):
        named_files("`minicnn/layers`")
