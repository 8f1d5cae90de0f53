"""Where node logs of agent-run instances live on the control plane (written by the agent
server, read by ``intercloud logs``). Standard library only, so reading logs does not
import the server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

__all__ = ["agent_log_files", "agent_log_path"]


def agent_log_path(log_root: Path | str, job_id: str, attempt: int, rank: int) -> Path:
    """The log of node ``rank`` of ``attempt`` of ``job_id`` on an agent-run instance
    (stdout and stderr, with the shim's ``== ... ==`` marker lines)."""
    return Path(log_root) / quote(job_id, safe="") / f"attempt-{attempt}" / f"node-{rank}.log"


def agent_log_files(log_root: Path | str, job_id: str, rank: int) -> list[Path]:
    """Every attempt's log of node ``rank`` of ``job_id``, oldest attempt first (what
    ``intercloud logs`` shows for an agent-run node: the attempts one after another)."""
    job_dir = Path(log_root) / quote(job_id, safe="")
    found = []
    for d in job_dir.glob("attempt-*"):
        number = d.name.removeprefix("attempt-")
        if number.isdigit() and (d / f"node-{rank}.log").is_file():
            found.append((int(number), d / f"node-{rank}.log"))
    return [path for _, path in sorted(found)]
