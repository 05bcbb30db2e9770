"""What ships answers for itself: every suite in suites/ is valid (where its optional data is
missing, the only complaint is the install line), `nox -s results` regenerates each of them, and
every folder in results/ is one that it writes."""

from __future__ import annotations

import ast

import pytest
from conftest import ROOT

from ptbench.errors import SuiteError
from ptbench.suite import load_suite

SUITES = sorted((ROOT / "suites").glob("*.yaml"))


def _nox_lists() -> tuple[list[str], dict[str, list[str]]]:
    """SHIPPED and PAGES as the noxfile defines them (read, not imported: nox need not be here)."""
    values = {}
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        name = getattr(node.targets[0], "id", None) if isinstance(node, ast.Assign) else None
        if name in ("SHIPPED", "PAGES"):
            values[name] = ast.literal_eval(node.value)
    return values["SHIPPED"], values["PAGES"]


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_is_valid_or_names_only_what_to_install(path):
    try:
        suite = load_suite(path)
    except SuiteError as err:
        assert all("is not available here" in p and "install" in p for p in err.problems), err.problems
        return
    assert suite.name == path.stem  # results/<name>/ is where its page goes


def test_nox_results_regenerates_every_suite_and_every_results_folder():
    shipped, pages = _nox_lists()
    in_pages = [s for suites in pages.values() for s in suites]
    assert sorted(shipped + in_pages) == [p.stem for p in SUITES]
    written = set(shipped) | set(pages) | {"nightly-benchmarks"}  # the nightly speed history
    folders = {p.name for p in (ROOT / "results").iterdir() if p.is_dir()}
    assert folders <= written, f"results/ folders nothing regenerates: {sorted(folders - written)}"
