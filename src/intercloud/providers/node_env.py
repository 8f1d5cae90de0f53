"""The base of every node's environment: a few variables of the machine, nothing else.

A node never inherits the environment of the process that starts it (the daemon may have
been started by anyone, with anyone's secrets). Its environment is, from lowest to
highest precedence: ``base_env`` (the ``BASE_ENV_NAMES`` set where the provider runs),
the command's ``env`` (spec ``envs``, then the submitter's variables), then the
provider's own variables (``INTERCLOUD_*``, torchrun's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Variables a node takes from the provider's environment (when set there); nothing else.
BASE_ENV_NAMES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
)


def base_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``BASE_ENV_NAMES`` found in ``environ``."""
    return {k: environ[k] for k in BASE_ENV_NAMES if k in environ}


def node_variables(
    *,
    job_id: str,
    attempt: int,
    rank: int,
    num_nodes: int,
    hosts: Sequence[str],
    accelerator_ids: Sequence[int],
    checkpoint_dir: str,
    provider: str,
    region: str,
    master_addr: str,
    master_port: int,
) -> dict[str, str]:
    """The provider's own variables of one node (highest precedence), the same on every
    provider: ``INTERCLOUD_*``, torchrun's ``env://`` rendezvous (``MASTER_ADDR``,
    ``MASTER_PORT``, ``WORLD_SIZE``/``RANK`` counting node processes) and
    ``CUDA_VISIBLE_DEVICES`` (the node's accelerator ids, "" when none)."""
    return {
        "INTERCLOUD_JOB_ID": job_id,
        "INTERCLOUD_ATTEMPT": str(attempt),
        "INTERCLOUD_NODE_RANK": str(rank),
        "INTERCLOUD_NUM_NODES": str(num_nodes),
        "INTERCLOUD_GPUS_PER_NODE": str(len(accelerator_ids)),
        "INTERCLOUD_NODE_IPS": "\n".join(hosts),
        "INTERCLOUD_CHECKPOINT_DIR": checkpoint_dir,
        "INTERCLOUD_PROVIDER": provider,
        "INTERCLOUD_REGION": region,
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "WORLD_SIZE": str(num_nodes),
        "RANK": str(rank),
        "NODE_RANK": str(rank),
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in accelerator_ids),
    }
