"""systemd/install.sh puts every file where Debian expects it; the ruleset it renders
passes `nft -c` and nftables.conf includes it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_install_into_a_root(tmp_path: Path) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nftables not installed")
    res = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root",
                          str(tmp_path)], capture_output=True, text=True, timeout=600,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    ruleset = tmp_path / "etc/nftables.d/debtgate.nft"
    assert "table inet debtgate" in ruleset.read_text()
    assert 'include "/etc/nftables.d/*.nft"' in (tmp_path / "etc/nftables.conf").read_text()
    for unit in ("debtgate.service", "debtgate-portal.service"):
        assert (tmp_path / "etc/systemd/system" / unit).exists()
    assert (tmp_path / "etc/debtgate/debtgate.toml").exists()
    check = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    version = subprocess.run([str(tmp_path / "opt/debtgate/venv/bin/debtgate"), "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("debtgate ")
