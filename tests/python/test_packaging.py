"""The installed product is `loaders`, `account_engagement_cards` and
`account_engagement_parquet` (no generic name such as `cards`, a project of its own on PyPI);
the emulators, the synthetic organisation, the demo driver and the benchmarks stay in the clone
(devtools/, bench/). The wheel is licensed Apache-2.0 (PEP 639 metadata) and carries the
LICENSE file."""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("devtools", "bench")
PRODUCT = ("loaders", "account_engagement_cards", "account_engagement_parquet")
# the names the cards and the Parquet plugin had before: generic, taken by others on PyPI
FORMER_NAMES = ("cards", "parquet_publish")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def shipped_packages() -> list[str]:
    """The packages pyproject.toml ships, sub-packages included (`loaders.graph`, ...)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]


def test_installed_packages_leave_dev_tooling_out():
    top_level = {package.split(".")[0] for package in shipped_packages()}
    assert sorted(top_level) == sorted(PRODUCT)


def test_every_package_of_the_product_is_listed():
    """An explicit list is not searched: a sub-package left out would be missing from the
    wheel."""
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for package in PRODUCT
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert found == set(shipped_packages())


def test_shipped_code_never_imports_dev_tooling():
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in DEV_ONLY
    }
    assert not offenders, sorted(offenders)


# sha256 of the Apache License 2.0's text from its title to "END OF TERMS AND CONDITIONS"
# (surrounding blank lines stripped), as apache.org publishes it (LICENSE-2.0.txt)
APACHE_2_TERMS_SHA256 = "4bf96504d6e83ce5c6fc7167f1795d9ceaa68e70ab86bc5d08ab93184262bbbe"
TERMS_END = "END OF TERMS AND CONDITIONS"


def test_license_file_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    terms = text[: text.index(TERMS_END) + len(TERMS_END)].strip()
    assert hashlib.sha256(terms.encode()).hexdigest() == APACHE_2_TERMS_SHA256
    assert "APPENDIX: How to apply the Apache License to your work." in text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from what pyproject.toml ships, in a copy of those files
    (a build in the clone would leave build/ behind)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for package in sorted({package.split(".")[0] for package in shipped_packages()}):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
         str(source)],
        check=True, timeout=300,
    )
    (built,) = out.glob("account_engagement-*.whl")
    return built


def test_wheel_declares_apache_2_and_holds_the_license(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        dist_info = metadata_name.rsplit("/", 1)[0]
        shipped_license = archive.read(f"{dist_info}/licenses/LICENSE")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert shipped_license == (ROOT / "LICENSE").read_bytes()


def test_wheel_holds_every_module_of_the_product(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    modules = {
        path.relative_to(ROOT).as_posix()
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
    }
    assert modules - names == set()


def test_wheel_installs_the_console_script(wheel: Path):
    """`pip install` of the wheel puts `account-engagement` on the PATH (entry_points.txt)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert "[console_scripts]" in entry_points
    assert "account-engagement = loaders.cli:console" in entry_points


def test_wheel_installs_no_generic_top_level_name(wheel: Path):
    """site-packages gets `loaders` and the two account_engagement_* packages, never `cards`
    or `parquet_publish`."""
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()
                     if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == set(PRODUCT)
    assert not top_level & set(FORMER_NAMES)
    assert not any((ROOT / name).exists() for name in FORMER_NAMES)


def test_the_dbt_plugin_profiles_yml_loads_is_shipped():
    """profiles.yml loads the Parquet plugin by module name: it must be a package the wheel
    installs (an installed project finds it without the clone's module_paths)."""
    import yaml

    profile = yaml.safe_load((ROOT / "profiles.yml").read_text())["account_engagement"]
    modules = {plugin["module"] for plugin in profile["outputs"]["dev"]["plugins"]}
    assert modules == {"account_engagement_parquet"}
    assert modules <= set(shipped_packages())
