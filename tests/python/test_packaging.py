"""The installed product is `loaders`, `cards` and `parquet_publish`; the emulators, the synthetic
organisation, the demo driver and the benchmarks stay in the clone (devtools/, bench/)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("devtools", "bench")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_installed_packages_leave_dev_tooling_out():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["setuptools"]["packages"]
    assert sorted(packages) == ["cards", "loaders", "parquet_publish"]


def test_shipped_code_never_imports_dev_tooling():
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for package in ("loaders", "cards", "parquet_publish")
        for path in (ROOT / package).rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in DEV_ONLY
    }
    assert not offenders, sorted(offenders)
