"""Run the four benchmarks in one go and print their figures (see bench/README.md).

    python bench/run_all.py            # about 4 minutes on 2 cores
    python bench/run_all.py --quick    # seconds: checks the scripts work, measures nothing
"""

from __future__ import annotations

import json

import coalescing
import fanout_latency
import harness
import mcp_throughput
import rest_throughput

if __name__ == "__main__":
    harness.parse_args(__doc__ or "")
    print(f"machine: {harness.machine()}; load generator: {'wrk' if harness.shutil.which('wrk') else 'python'}; "
          f"{harness.RUNS} runs of {harness.DURATION:g} s, medians\n")
    figures = {
        "a_rest": rest_throughput.main(),
        "b_mcp": mcp_throughput.main(),
        "c_fanout": fanout_latency.main(),
        "d_coalescing": coalescing.main(),
    }
    print("\n" + json.dumps(figures, indent=1))
