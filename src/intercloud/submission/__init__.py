"""What a submission carries besides its spec text, checked and resolved when it is made.

The daemon starts a job later, in another process, from the stored spec text. What that
text cannot say is stored with the job (``workloads.submission``, see ``context``):

- the submitter's explicit environment (``env``: ``--env``, ``--env-file``, the SDK's
  ``env=``), never the daemon's (``job_env``);
- the spec's ``workdir``/``file_mounts`` sources resolved to absolute paths against the
  spec file's folder, after checking that the chosen provider can honour them
  (``job_files``);
- the placement the planner chose at submission (shown as *planned* until the job is
  placed).
"""

from intercloud.submission.job_env import (
    BASE_ENV_NAMES,
    InvalidEnv,
    base_env,
    check_env,
    parse_env_file,
    parse_env_options,
)
from intercloud.submission.job_files import (
    STORAGE_URI,
    ResolvedFiles,
    resolve_files,
)

__all__ = [
    "BASE_ENV_NAMES",
    "STORAGE_URI",
    "InvalidEnv",
    "ResolvedFiles",
    "base_env",
    "check_env",
    "parse_env_file",
    "parse_env_options",
    "resolve_files",
]
