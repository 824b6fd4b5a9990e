"""The package's structure, checked from its source: no import cycle inside minicnn, and no
module outside the model core calls a private method of a model."""
import ast
from pathlib import Path

import pytest

import minicnn
from minicnn import registry
from minicnn.layers import Conv2D, Dense, Flatten, Layer
from minicnn.models import Sequential, load_model
from minicnn.saving import ModelFileError

PACKAGE = Path(minicnn.__file__).parent


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules):
    """The minicnn modules that path imports, at the top or inside a function alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "minicnn"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "minicnn":
            for a in node.names:  # `from minicnn import gpu` imports the module minicnn.gpu
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return found


def import_graph():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, paths) - {name} for name, path in paths.items()}


def find_cycle(graph, skip=("minicnn",)):
    """A list of modules that import each other in a ring, or None. The package's __init__,
    which imports its public submodules, is left out: a module importing `minicnn` itself
    (rather than a submodule) shows up as an edge into it, checked separately."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt in skip:
                continue
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (ring := visit(nxt, path + [nxt])):
                return ring
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and start not in skip and (ring := visit(start, [start])):
            return ring
    return None


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    into_package = sorted(name for name, targets in graph.items() if "minicnn" in targets and name != "minicnn")
    assert into_package == [], f"these modules import the package minicnn itself: {into_package}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    graph["minicnn.gpu"] = graph["minicnn.gpu"] | {"minicnn.saving"}  # saving -> gpu -> saving
    assert find_cycle(graph) is not None


MODEL_CORE = {"minicnn.model", "minicnn.sequential", "minicnn.model_layer", "minicnn.models", "minicnn.training",
              "minicnn.steps"}  # steps.py: the Trainer's mixins


def private_model_calls(path):
    """Calls such as model._forward(...) or self.model._check_x(...) in path."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name == "model":
                calls.append(f"{path.name}:{node.lineno} model.{node.attr}")
    return calls


def test_only_the_model_core_touches_private_parts_of_a_model():
    root = PACKAGE.parent
    paths = [p for p in PACKAGE.rglob("*.py") if module_name(p) not in MODEL_CORE]
    paths += list((root / "benchmarks").glob("*.py")) + list((root / "examples").glob("*.py"))
    found = [c for p in paths for c in private_model_calls(p)]
    assert found == [], found


def test_the_private_call_finder_finds_one(tmp_path):
    (tmp_path / "snippet.py").write_text("p = model._forward(x)\nq = self.model._check_x(x)\nr = model.forward(x)\n")
    assert private_model_calls(tmp_path / "snippet.py") == ["snippet.py:1 model._forward", "snippet.py:2 model._check_x"]


def test_registry_finds_layers_by_name_and_takes_user_layers(tmp_path):
    assert registry.get_class("Conv2D") is Conv2D and registry.get_class("Sequential") is Sequential

    class Doubler(Layer):
        def call(self, x, training=False):
            return 2 * x

        def backward(self, dy):
            return 2 * dy

    model = Sequential([Flatten(input_shape=(2, 2, 1)), Doubler(), Dense(2)])
    path = model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="unknown class 'Doubler'.*custom_objects"):
        load_model(path)
    assert type(load_model(path, custom_objects={"Doubler": Doubler}).layers[1]) is Doubler
    registry.register_serializable()(Doubler)
    try:
        assert type(load_model(path).layers[1]) is Doubler
        with pytest.raises(ValueError, match="already registered as 'Doubler'"):
            registry.register_serializable()(type("Doubler", (Layer,), {}))
    finally:
        registry._CLASSES.pop("Doubler")
    config = model.get_config()
    again = Sequential.from_config(config, custom_objects={"Doubler": Doubler})
    assert again.get_config() == config and [type(a) for a in again.layers] == [Flatten, Doubler, Dense]
