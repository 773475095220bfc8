"""mypy on src/landforge against a baseline of known errors that may only shrink.

    python tools/mypy_baseline.py            # fail on any error not in the baseline
    python tools/mypy_baseline.py --update   # rewrite the baseline (after fixing errors)

An error is keyed by file, error code and message, not by line number, so edits above
a known error do not make it "new". The run fails when an error is not in the baseline,
and says which baseline entries are fixed (remove them with --update).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "tools" / "mypy-baseline.txt"
LINE = re.compile(r"^(?P<file>[^:]+):\d+: error: (?P<msg>.*?)\s+\[(?P<code>[\w-]+)\]$")


def run_mypy() -> Counter[str]:
    """Errors of ``mypy src/landforge`` as ``file: [code] message`` with their counts."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "src/landforge", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors: Counter[str] = Counter()
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            errors[f"{m['file']}: [{m['code']}] {m['msg']}"] += 1
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"mypy failed to run (exit {proc.returncode})")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline")
    args = parser.parse_args()
    errors = run_mypy()
    if args.update:
        BASELINE.write_text("".join(f"{e}\n" for e in sorted(errors.elements())))
        print(f"baseline: {sum(errors.values())} known errors -> {BASELINE.relative_to(ROOT)}")
        return 0
    known = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    new = errors - known
    fixed = known - errors
    for e in sorted(new.elements()):
        print(f"new mypy error: {e}")
    if fixed:
        print(f"{sum(fixed.values())} baseline error(s) fixed: run with --update to shrink it")
    print(f"mypy: {sum(errors.values())} errors, {sum(new.values())} not in the baseline")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
