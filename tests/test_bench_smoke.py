"""Each benchmark script runs end to end in its quick mode, so the scripts cannot rot. Nothing is
timed or compared here: the figures are the scripts' business (bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["rest_throughput.py", "mcp_throughput.py", "fanout_latency.py", "coalescing.py"])
def test_the_benchmark_script_runs_in_quick_mode(script: str) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True, timeout=300, cwd=BENCH, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("(")  # the figure's label, e.g. "(a) REST cached GET ..."
