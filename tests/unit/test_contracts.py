"""The contracts' breaking-change check (ops/scripts/buf_breaking.sh) catches what it must."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"


def _breaking(changed: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", str(changed), "--against", str(ROOT / "proto")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_renamed_field_and_a_removed_rpc_are_breaking_changes(tmp_path: Path) -> None:
    changed = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", changed)
    marketdata = changed / "trademesh" / "marketdata" / "v1" / "marketdata.proto"
    text = marketdata.read_text()
    assert "string symbol = 1;" in text
    marketdata.write_text(text.replace("string symbol = 1;", "string instrument = 1;", 1))
    result = _breaking(changed)
    assert result.returncode != 0 and 'changed name from "symbol" to "instrument"' in result.stdout


def test_an_added_field_is_not_breaking(tmp_path: Path) -> None:
    changed = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", changed)
    common = changed / "trademesh" / "common" / "v1" / "common.proto"
    common.write_text(common.read_text() + "\nmessage AddedForTheTest {\n  string note = 1;\n}\n")
    result = _breaking(changed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_released_commit_is_named_and_the_script_runs_against_it() -> None:
    released = (ROOT / "proto" / "RELEASED").read_text().strip()
    assert len(released) == 40 and all(c in "0123456789abcdef" for c in released)
    result = subprocess.run(
        [str(ROOT / "ops" / "scripts" / "buf_breaking.sh")], capture_output=True, text=True, timeout=120
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    # A clone without history (a shallow checkout) cannot compare, and must say so.
    assert "buf breaking: proto/ against" in said or "the check cannot run here" in said
