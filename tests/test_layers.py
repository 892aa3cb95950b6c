"""The parts of sagerun stand in one order and import only downward (ARCHITECTURE.md).

Read from the sources with ``ast``, every import counted: at the top, inside functions, under
``TYPE_CHECKING``. A part may import itself and the parts below it; the model imports nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sagerun"

#: bottom to top; the top-level modules (``__init__``, ``sync``, ``demo``) and ``cli`` are the entry points
LAYERS = ["_model", "store", "backends", "_ingest", "_artifacts", "_upload", "_read", "_async", "_sync", "integrations",
          "ui", "entry"]
ENTRY_PACKAGES = {"cli"}


def part_of(module: str) -> str:
    """The part of ``sagerun.<module>``: its folder, or ``entry`` for a module at the top."""
    head = module.split(".")[0]
    if head not in ENTRY_PACKAGES and (PACKAGE / head).is_dir() and (PACKAGE / head / "__init__.py").exists():
        return head
    return "entry"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module under ``sagerun``) of every import of sagerun in the file at ``path``."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name[len("sagerun."):]) for a in node.names if a.name.startswith("sagerun.")]
            found += [(node.lineno, "__init__") for a in node.names if a.name == "sagerun"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "sagerun" or node.module.startswith("sagerun.")):
                target = node.module[len("sagerun."):] if node.module != "sagerun" else ""
            else:
                continue
            if target:
                found.append((node.lineno, target))
            else:  # ``from . import x`` at the top, ``from sagerun import x``: x is the module
                found += [(node.lineno, a.name) for a in node.names]
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_place_in_the_order():
    parts = {part_of(".".join(p.relative_to(PACKAGE).with_suffix("").parts)) for p in sources()}
    assert parts <= set(LAYERS), f"give {sorted(parts - set(LAYERS))} a place in LAYERS and in ARCHITECTURE.md"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_only_downward(path):
    source = part_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    upward = [f"line {line}: sagerun.{target} ({part_of(target)})" for line, target in imports(path)
              if LAYERS.index(part_of(target)) > LAYERS.index(source)]
    assert not upward, f"{path.relative_to(PACKAGE)} is in {source} and imports from above it: {upward}"


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    # The rule itself: a checker that missed these would let a cycle back in unseen.
    found = dict((target, line) for line, target in imports(PACKAGE / "_ingest" / "sender.py"))
    assert "store.spool" in found and "_model.session" in found
    assert part_of("_async.run") == "_async" and part_of("cli") == "entry" and part_of("sync") == "entry"
    assert LAYERS.index(part_of("store.spool")) < LAYERS.index(part_of("_ingest.sender"))
