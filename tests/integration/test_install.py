"""The installers: systemd/install.sh puts every file where Debian expects it (the ruleset
it renders passes `nft -c` and nftables.conf includes it); examples/install.sh (what the
README's commands run first) installs editable. Both say nothing but their own lines:
setuptools has nothing to warn about in the packaging, and the installed package finds
its templates, RADIUS profiles and dictionaries."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# This machine's pip.conf may name local package indexes that do not exist; pip says so
# about each one. That is the host's configuration, not debtgate's packaging.
HOST_PIP_CONFIG = re.compile(r"^WARNING: Location '[^']*' is ignored: it is neither a file "
                             r"nor a directory\.$")
WARNING = re.compile(r"warning|ignored|!!", re.IGNORECASE)

CHECK_DATA = """
import sys
from pathlib import Path
import jinja2
from debtgate.portal.pages import SHIPPED, catalogues, load_catalogue
from debtgate.radius.packets import load_dictionary
from debtgate.radius.profiles import load_profiles

env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SHIPPED)), autoescape=True,
                         extensions=["jinja2.ext.i18n"])
pages = sorted(p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*.html"))
env.get_template("blocked.html")
russian = load_catalogue(catalogues([SHIPPED.parent])["ru"], "ru")
assert russian.gettext("Account") == "Лицевой счёт", "the ru catalogue did not travel"
profiles = load_profiles(load_dictionary())
print(Path(sys.modules["debtgate"].__file__).parent)
print(len(pages), " ".join(sorted(profiles)))
"""


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if WARNING.search(line) and not HOST_PIP_CONFIG.match(line.strip())]


def shipped_data(python: Path) -> tuple[Path, int, list[str]]:
    """Where the installed package lives, how many templates it has, its profiles."""
    res = subprocess.run([str(python), "-c", CHECK_DATA], capture_output=True, text=True,
                         timeout=120, check=False, cwd="/")
    assert res.returncode == 0, res.stderr
    where, counts = res.stdout.splitlines()[-2:]
    n, *profiles = counts.split()
    return Path(where), int(n), profiles


def expected_data() -> tuple[int, list[str]]:
    package = ROOT / "src" / "debtgate"
    templates = len(list((package / "portal" / "templates").rglob("*.html")))
    profiles = sorted(p.stem for p in (package / "radius" / "profiles").glob("*.toml"))
    return templates, profiles


def test_install_into_a_root(tmp_path: Path) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nftables not installed")
    res = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root",
                          str(tmp_path)], capture_output=True, text=True, timeout=600,
                         check=False)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert warnings_in(output) == [], output
    ruleset = tmp_path / "etc/nftables.d/debtgate.nft"
    assert "table inet debtgate" in ruleset.read_text()
    assert 'include "/etc/nftables.d/*.nft"' in (tmp_path / "etc/nftables.conf").read_text()
    for unit in ("debtgate.service", "debtgate-portal.service"):
        assert (tmp_path / "etc/systemd/system" / unit).exists()
    assert (tmp_path / "etc/debtgate/debtgate.toml").exists()
    check = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    venv = tmp_path / "opt/debtgate/venv"
    version = subprocess.run([str(venv / "bin/debtgate"), "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("debtgate ")
    # A normal (non-editable) install: the data travelled into site-packages.
    where, templates, profiles = shipped_data(venv / "bin/python")
    assert where.is_relative_to(venv), where
    assert (templates, profiles) == expected_data()
    assert templates and "mikrotik" in profiles


def test_examples_install_is_quiet(tmp_path: Path) -> None:
    """`bash examples/install.sh` (the first thing `bash examples/lab.sh` and
    `bash tests/run.sh` do), in a copy of this checkout with no .venv yet: the editable
    install works and prints no setuptools warnings."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "artifacts", ".*_cache"))
    res = subprocess.run(["bash", "examples/install.sh"], cwd=checkout, capture_output=True,
                         text=True, timeout=900, check=False)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert ">> debtgate installed: debtgate " in output, output
    assert warnings_in(output) == [], output
    where, templates, profiles = shipped_data(checkout / ".venv/bin/python")
    assert where == checkout / "src" / "debtgate"  # editable: the checkout's own files
    assert (templates, profiles) == expected_data()
