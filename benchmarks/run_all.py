"""Run every benchmark script (``bench_*.py``) in this folder and collect their results.

Each script prints a JSON object on its last stdout line; results are written to
``benchmarks/out/results.json`` with the machine and date, to be copied into
BENCHMARKS.md. Run: ``make bench`` or ``python benchmarks/run_all.py [NAME ...]``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": dt.date.today().isoformat(),
    }
    results = {"machine": machine, "benchmarks": {}}
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, cwd=HERE.parent
        )
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:])
        entry: dict = {"seconds": round(time.perf_counter() - t0, 2), "returncode": proc.returncode}
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            entry["result"] = json.loads(lines[-1])
        else:
            failed += 1
        results["benchmarks"][script.stem] = entry
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {out / 'results.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
