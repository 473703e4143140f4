"""A clone stands on its own: no file git tracks refers to a document outside the repository
(the definitions live in docs/metrics.md and docs/configuration.md) or to an absolute path of
the machine it was written on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What a reference outside the repository looks like. The names are written in parts so that
# this file, tracked too, does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            re.escape("../" + "shared"),  # the sibling folder the docs used to live in
            r"(?<![\w-])" + re.escape("shared" + "/"),
            r"\b" + re.escape("METRICS" + ".md"),  # case-sensitive: docs/metrics.md is ours
            r"\b" + re.escape("INTERFACE" + ".md"),
            # an absolute path of this machine (the clone's own included), not part of a
            # relative path such as framework/work/
            r"(?<![\w./-])" + re.escape("/" + "work" + "/"),
            r"(?<![\w./-])" + re.escape(ROOT.as_posix() + "/"),
        ]
    )
)


def references_outside(text: str) -> list[tuple[int, str]]:
    """(line number, matched text) of every reference outside the repository in `text`."""
    return [
        (number, match.group(0))
        for number, line in enumerate(text.splitlines(), start=1)
        for match in OUTSIDE.finditer(line)
    ]


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git clone: no list of tracked files to check")
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    return [name for name in listing.decode().split("\0") if name]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("defined in `../" "shared" "/METRICS" ".md`", ["../" "shared", "METRICS" ".md"]),
        ("the BI contract (INTERFACE" ".md)", ["INTERFACE" ".md"]),
        ("the exact names of shared" "/INTERFACE" ".md", ["shared" "/", "INTERFACE" ".md"]),
        ("DUCKDB_PATH=/work" "/main/warehouse.duckdb", ["/work" "/"]),
        ("see docs/metrics.md and docs/configuration.md", []),
        ("the framework/work/ folder, a shared-nothing/ design, unshared/", []),
    ],
)
def test_references_outside_are_recognised(text: str, found: list[str]):
    assert [match for _, match in references_outside(text)] == found


def test_no_tracked_file_refers_outside_the_repository():
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary (docs/card.png)
            continue
        text = data.decode("utf-8", errors="replace")
        offenders += [f"{name}:{number}: {match}" for number, match in references_outside(text)]
    assert not offenders, (
        "references outside the repository (point them at docs/metrics.md or "
        "docs/configuration.md):\n" + "\n".join(offenders)
    )
