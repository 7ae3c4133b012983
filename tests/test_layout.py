"""The package's shape, as docs/design.md promises it: no import circle (lazy imports inside
functions included; imports for type hints only, under TYPE_CHECKING, do not count)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "minidq"


def module_name(path: Path, package: Path) -> str:
    """minidq/deploy/intinfer.py -> 'deploy.intinfer' (relative to the package)."""
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: Path) -> set[str]:
    """The package's modules that `path` imports at run time, wherever in the file, as module names."""
    tree = ast.parse(path.read_text())
    type_only = {id(node) for block in ast.walk(tree)
                 if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
                 for node in ast.walk(block)}
    here = module_name(path, package).split(".")
    base = here if path.name == "__init__.py" else here[:-1]  # the package this file's "." means
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1 and id(node) not in type_only:
            anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            if node.module:
                found.add(".".join([*anchor, node.module]).strip("."))
            else:
                found |= {".".join([*anchor, a.name]).strip(".") for a in node.names}
    return found


def cycles(package: Path) -> list[str]:
    files = sorted(package.rglob("*.py"))
    graph = {module_name(p, package): imports(p, package) for p in files}
    graph = {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}
    found, done = [], set()

    def visit(node, path):
        for dep in sorted(graph[node]):
            if dep in path:
                found.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(node)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return found


def test_no_import_cycle():
    assert cycles(PACKAGE) == []


def test_the_check_sees_a_lazy_cycle_and_ignores_type_hints(tmp_path):
    (tmp_path / "a.py").write_text("from .b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import g\n")
    assert cycles(tmp_path) == ["a -> b -> a"]
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n")
    assert cycles(tmp_path) == []
    (tmp_path / "sub").mkdir()  # through a subpackage: a -> sub.c -> a
    (tmp_path / "sub" / "__init__.py").write_text("")
    (tmp_path / "sub" / "c.py").write_text("from ..a import x\n")
    (tmp_path / "a.py").write_text("from .sub.c import y\n")
    assert cycles(tmp_path) == ["a -> sub.c -> a"]


def long_functions(package: Path, limit: int) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= limit:
                found.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    return found


def test_functions_a_reader_can_hold():
    """No function over 70 lines; the training loop, the one learners read most, under 60."""
    assert long_functions(PACKAGE, 70) == []
    assert not [f for f in long_functions(PACKAGE, 60) if " train " in f]


def test_the_length_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n" + "    x = 1\n" * 80)
    assert long_functions(tmp_path, 70) == ["m.py:1 f (81 lines)"]


# Plain records may be filled in from outside (dataclass configs, argparse namespaces, autograd's
# ctx) and so may third-party objects configured by attribute (a tokenizers backend, warnings).
RECORDS = {"self", "cls", "cfg", "config", "args", "progress", "ctx", "backend", "warnings", "parse"}


def outside_writes(package: Path) -> list[str]:
    """Attribute assignments on an object other than `self`: state set from outside its class. A
    classmethod building its own instance, and module swaps through setattr (torch's idiom for a
    model rewrite), are not counted."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        builders = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                    and any(getattr(d, "id", None) == "classmethod" for d in f.decorator_list) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in builders or not isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]:
                if not isinstance(t, ast.Attribute):
                    continue
                root = t.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                owner = t.value.attr if isinstance(t.value, ast.Attribute) else getattr(root, "id", "")
                if getattr(root, "id", "") not in RECORDS and owner not in RECORDS:
                    found.append(f"{path.relative_to(package)}:{node.lineno} {ast.unparse(t)}")
    return found


def test_no_state_set_from_outside_its_class():
    assert outside_writes(PACKAGE) == []


def test_the_outside_write_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("def f(model, cfg):\n    model.quant_config = cfg\n    cfg.lr = 1\n"
                                   "    a.b, c = 1, 2\n")
    assert outside_writes(tmp_path) == ["m.py:2 model.quant_config", "m.py:4 a.b"]
