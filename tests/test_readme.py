"""The README's Python example, saved as a script, runs and prints what the README shows."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_python_api_example_prints_what_the_readme_shows(tmp_path, data_dir):
    section = README.read_text().split("## Python API", 1)[1]
    code, shown = re.findall(r"```(?:python|console)\n(.*?)```", section, flags=re.S)[:2]
    env = {**os.environ, "NASX_DATA": str(data_dir), "NASX_CACHE": str(tmp_path / "scores.sqlite")}
    # saved and run as a script, as a user would: worker processes then import it again (its main guard)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
