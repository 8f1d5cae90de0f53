"""The node side needs nothing but intercloud: the agent imports only the standard
library and intercloud's standard-library modules."""

from __future__ import annotations

import subprocess
import sys

THIRD_PARTY = ("sqlalchemy", "numpy", "pydantic", "fastapi", "uvicorn", "yaml", "psutil")


def test_the_agent_imports_no_third_party_package() -> None:
    code = (
        "import sys, intercloud.agent.main\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {THIRD_PARTY!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
