"""The code a stage runs, and its sha256: Snakemake reruns a job whose code changed, like one whose config changed.

From a stage's entry points — (module, function) pairs — the walk follows calls by name inside a module and
imports (absolute and relative) into other modules of the packages it is told to follow: phaselab itself and an
experiment type's own package, wherever that lives. Code is hashed as ``ast.unparse`` writes it, so comments and
formatting do not count.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

ALL = None  # a module used as a whole (``from phaselab import data``), not by some of its names


@functools.cache
def module_path(name: str) -> Path | None:
    """The source file of a module name, or None for a name that is not a module (a function, a class). Found
    on disk from the top-level package's location, importing nothing (a heavy module must not load at parse
    time)."""
    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    for part in rest:
        if path.name != "__init__.py":
            return None
        folder = path.parent
        path = folder / f"{part}.py" if (folder / f"{part}.py").is_file() else folder / part / "__init__.py"
        if not path.is_file():
            return None
    return path


def _parsed(module: str) -> tuple[list[ast.stmt], dict[str, ast.stmt], bool]:
    """A module's top-level statements other than definitions, its functions and classes by name, and whether
    it is a package (an ``__init__.py``); read again when the file changes."""
    path = module_path(module)
    return _parse(path, path.stat().st_mtime_ns)


@functools.cache
def _parse(path: Path, mtime_ns: int) -> tuple[list[ast.stmt], dict[str, ast.stmt], bool]:
    tree = ast.parse(path.read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    return [n for n in tree.body if n not in defs.values()], defs, path.name == "__init__.py"


def _followed(name: str, roots: frozenset[str]) -> bool:
    return name.split(".")[0] in roots and module_path(name) is not None


def _uses(module: str, nodes, roots: frozenset[str]) -> tuple[set[str], set[tuple[str, str | None]]]:
    """Names that ``nodes`` (of ``module``) refer to, and the (module, name) pairs their import statements load
    from followed packages; name is ALL for a whole module."""
    names, imports = set(), set()
    package = module if _parsed(module)[2] else module.rpartition(".")[0]
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Import):
                imports |= {(a.name, ALL) for a in node.names if _followed(a.name, roots)}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                if not _followed(base, roots):
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    imports.add((sub, ALL) if _followed(sub, roots) else (base, a.name))
    return names, imports


def reached(entries, roots=("phaselab",)) -> dict[str, set[str] | None]:
    """From (module, name) entry points, every module of the followed packages reached through imports, with the
    functions and classes of it that are used (ALL: the whole module), following calls by name inside each
    module."""
    roots = frozenset(roots)
    out: dict[str, set[str] | None] = {}
    todo = list(entries)
    while todo:
        module, name = todo.pop()
        top, defs, _ = _parsed(module)
        if module not in out:  # its top-level statements run on import
            out[module] = set()
            names, imports = _uses(module, top, roots)
            todo += [(module, n) for n in names if n in defs] + list(imports)
        used = out[module]
        if used is ALL or name in used:
            continue
        if name is ALL:
            out[module] = ALL
            todo += [(module, n) for n in defs]
            continue
        used.add(name)
        if name in defs:
            names, imports = _uses(module, [defs[name]], roots)
            todo += [(module, n) for n in names if n in defs and n not in used] + list(imports)
    return out


def sha256(reached_: dict[str, set[str] | None]) -> str:
    """sha256 of the code reached, as ``ast.unparse`` writes it."""
    digest = hashlib.sha256()
    for module in sorted(reached_):
        top, defs, _ = _parsed(module)
        used = defs if reached_[module] is ALL else sorted(n for n in reached_[module] if n in defs)
        digest.update(module.encode() + b"\0")
        for node in top + [defs[n] for n in used]:
            digest.update(ast.unparse(node).encode() + b"\0")
    return digest.hexdigest()


def defines(module: str, name: str) -> bool:
    """Whether a module's source defines a function or class ``name`` at top level (read, not imported)."""
    return module_path(module) is not None and name in _parsed(module)[1]
