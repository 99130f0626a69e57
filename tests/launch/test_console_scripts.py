"""The console scripts of setup.py point at argument-free entry functions."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _console_scripts():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return [element.value for element in value.elts]
    raise AssertionError("setup.py declares no console_scripts")


def test_every_console_script_resolves_to_a_function_without_required_arguments():
    scripts = _console_scripts()
    assert {s.split("=")[0] for s in scripts} >= {"affnet-train", "affnet-eval", "affnet-export",
                                                   "affnet-predict", "affnet-preprocess"}
    # One process per script: each launch module defines its own absl flags.
    check = ("import importlib, inspect, sys; module, name = sys.argv[1].split(':'); "
             "f = getattr(importlib.import_module(module), name); "
             "required = [p.name for p in inspect.signature(f).parameters.values() "
             "if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]; "
             "sys.exit(f'needs arguments {required}' if required else 0)")
    for script in scripts:
        name, target = script.split("=")
        result = subprocess.run([sys.executable, "-c", check, target], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"{name} -> {target}: {result.stderr[-2000:]}"
