"""Imports run one way: layers -> models -> objectives / evaluation -> training -> launch.

Walks every import statement (module level and inside functions, read with `ast`, so
nothing is imported) of `affnet/` and `data_pipeline/` and fails on an import circle,
on an import of `affnet.training` from outside it, and on a function-level import of
a project module (allowed only for an optional heavy dependency, e.g. Beam or ONNX,
which are not project modules).
"""

import ast
import os

from helpers import ROOT

PACKAGES = ("affnet", "data_pipeline")
# Each layer may import only the layers listed after it (and itself).
# `weights.transfer` (copy by layer name, Keras only) sits below the models that use it;
# the rest of `weights` builds models. The longest matching prefix decides a module's layer.
# Inside data_pipeline the commands sit on top of the stages: the reader needs only records,
# face work needs media and records, media needs only the base plumbing.
LAYERS = ("affnet.training", "affnet.predict", "affnet.evaluation", "affnet.objectives", "affnet.weights", "affnet.models",
          "affnet.weights.transfer", "affnet.layers", "affnet.export_format", "affnet.names", "affnet.configs",
          "data_pipeline.adapters", "data_pipeline.beam_preprocess", "data_pipeline.preprocess",
          "data_pipeline.jobs", "data_pipeline.synthetic", "data_pipeline.reader", "data_pipeline.faces", "data_pipeline.records",
          "data_pipeline.media", "data_pipeline.base", "data_pipeline")
# Stages that must not reach each other even where the order above would allow it.
FORBIDDEN = (("data_pipeline.reader", "data_pipeline.faces"), ("data_pipeline.reader", "data_pipeline.media"),
             ("data_pipeline.media", "data_pipeline.records"), ("data_pipeline.faces", "data_pipeline.reader"),
             ("data_pipeline.records", "data_pipeline.media"))
# Command-line modules: no library module imports them.
COMMAND_LINES = ("data_pipeline.preprocess", "data_pipeline.beam_preprocess", "data_pipeline.adapters.__main__",
                 "data_pipeline.synthetic.__main__", "affnet.weights.convert")


def _modules():
    """{module name: path} of every .py file under the packages."""
    modules = {}
    for package in PACKAGES:
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    modules[".".join(parts)] = path
    return modules


def _imports(path, module, modules):
    """[(imported project module, line, at module level)] of the file at `path`."""
    tree = ast.parse(open(path).read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []

    def visit(node, top_level):
        for child in ast.iter_child_nodes(node):
            nested = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - child.level + 1] + [base]).strip(".")
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in child.names]
            else:
                visit(child, nested)
                continue
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a package path.
                    target = target.rpartition(".")[0]
                if target and target != module:
                    found.append((target, child.lineno, top_level))

    visit(tree, True)
    return found


def _graph():
    modules = _modules()
    return modules, {module: _imports(path, module, modules) for module, path in modules.items()}


# Lazy on purpose: `import affnet` stays light (no TensorFlow, no dlib) until `affnet.Predictor` is used.
# And `python -m affnet.weights.convert --help` answers without TensorFlow.
ON_PURPOSE_LAZY = {("affnet", "affnet.predict.predictor"), ("affnet.weights.convert", "affnet"),
                   ("affnet.weights.convert", "affnet.models"), ("affnet.weights.convert", "affnet.weights"),
                   ("affnet.weights.convert", "affnet.weights.keras_h5"),
                   ("affnet.weights.convert", "affnet.weights.tf1_checkpoint")}


def _layer(module):
    matches = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    return LAYERS.index(max(matches, key=len)) if matches else None


def test_no_import_circle():
    _, graph = _graph()
    edges = {module: sorted({target for target, _, _ in imports}) for module, imports in graph.items()}
    state, stack, circles = {}, [], []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in edges[module]:
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_nothing_outside_training_imports_it():
    _, graph = _graph()
    upward = [f"{module}:{line} imports {target}" for module, imports in graph.items()
              for target, line, _ in imports
              if target.startswith("affnet.training") and not module.startswith("affnet.training")]
    assert not upward, "\n".join(upward)


def test_imports_run_one_way():
    _, graph = _graph()
    wrong = []
    for module, imports in graph.items():
        mine = _layer(module)
        for target, line, _ in imports:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs < mine:
                wrong.append(f"{module}:{line} imports {target}, a layer above it")
    assert not wrong, "\n".join(wrong)


def test_stages_keep_apart_and_no_library_imports_a_command_line():
    _, graph = _graph()
    wrong = [f"{module}:{line} imports {target}" for module, imports in graph.items() for target, line, _ in imports
             if any(_within(module, a) and _within(target, b) for a, b in FORBIDDEN)
             or (target in COMMAND_LINES and module not in COMMAND_LINES)]
    assert not wrong, "\n".join(wrong)


def _within(module, prefix):
    return module == prefix or module.startswith(prefix + ".")


def test_project_modules_are_imported_at_module_level():
    _, graph = _graph()
    lazy = [f"{module}:{line} imports {target} inside a function" for module, imports in graph.items()
            for target, line, top_level in imports if not top_level and module.startswith("affnet")
            and (module, target) not in ON_PURPOSE_LAZY]
    assert not lazy, "\n".join(lazy)


def test_the_walk_sees_the_known_edges():
    """The walk itself: it finds what these modules are known to import."""
    _, graph = _graph()
    targets = {module: {target for target, _, _ in imports} for module, imports in graph.items()}
    assert "affnet.objectives.ccc" in targets["affnet.objectives.losses"]
    assert "affnet.models.fusion" in targets["affnet.models.registry"]
    assert "data_pipeline.records.schema" in targets["affnet.models.heads"]
