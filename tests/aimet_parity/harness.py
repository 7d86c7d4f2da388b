"""Running the AIMET oracle (aimet_oracle.py) in the side venv."""

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_oracle(aimet_python: str, cases: list, out_dir: Path) -> Path:
    """Runs aimet_oracle.py on `cases` in the side venv; returns `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cases_file = out_dir / "cases.json"
    cases_file.write_text(json.dumps(cases))
    proc = subprocess.run([aimet_python, str(HERE / "aimet_oracle.py"), str(cases_file),
                           str(out_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the AIMET oracle failed:\n{proc.stderr[-3000:]}")
    return out_dir
