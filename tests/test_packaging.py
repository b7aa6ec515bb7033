"""pyproject.toml: metadata that current and future build tools accept without a warning."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib is Python 3.11+", allow_module_level=True)
import tomllib

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))


def test_license_is_an_spdx_expression():
    """`license = {text = ...}` warns on `pip install .`; builds after 2027-02-18 fail."""
    assert PYPROJECT["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))


def test_build_backend_is_bounded_to_versions_that_read_spdx_licenses():
    (requirement,) = PYPROJECT["build-system"]["requires"]
    low, high = re.fullmatch(r"setuptools>=(\d+),<(\d+)", requirement).groups()
    assert int(low) >= 77  # the first setuptools that accepts an SPDX `license` string
    assert int(high) > int(low)
