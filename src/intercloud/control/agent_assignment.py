"""What the control plane hands an instance's node agent for one job node: the
``Assignment`` built from the job reconciler's ``NodeCommand``, with the same
environment a local node gets (``providers.node_env``), addresses being the instances'.
"""

from __future__ import annotations

from intercloud.agent.protocol import Assignment
from intercloud.providers.base import Allocation, NodeCommand
from intercloud.providers.node_env import node_variables

#: torchrun's default rendezvous port, on rank 0's instance.
DEFAULT_MASTER_PORT = 29500


def assignment_for(
    allocation: Allocation,
    command: NodeCommand,
    *,
    checkpoint_dir: str | None = None,
    master_port: int = DEFAULT_MASTER_PORT,
    grace_s: float = 10.0,
) -> Assignment:
    """The assignment of node ``command.rank`` of ``allocation`` (hosts: the instances'
    addresses, rank 0's is ``MASTER_ADDR``).

    ``env`` is the command's variables below the node variables of every provider.
    ``checkpoint_dir`` is ``INTERCLOUD_CHECKPOINT_DIR`` as the node sees it (storage every
    attempt reaches, e.g. a mounted bucket); None leaves it to the agent, which uses a
    folder of its instance (checkpoints then do not outlive the instance). ValueError
    for a rank the allocation lacks, or files to copy (agents do not take
    ``workdir``/``file_mounts``: their provider must not declare ``FILE_SYNC``).
    """
    slot = next((n for n in allocation.nodes if n.rank == command.rank), None)
    if slot is None:
        raise ValueError(f"rank: allocation {allocation.allocation_id} has no node {command.rank}")
    if command.workdir or command.file_mounts:
        raise ValueError("workdir/file_mounts: node agents do not copy files")
    rank0 = min(allocation.nodes, key=lambda n: n.rank)
    variables = node_variables(
        job_id=command.job_id,
        attempt=command.attempt,
        rank=command.rank,
        num_nodes=command.num_nodes,
        hosts=[n.host for n in sorted(allocation.nodes, key=lambda n: n.rank)],
        accelerator_ids=slot.accelerator_ids,
        checkpoint_dir=checkpoint_dir or "",
        provider=allocation.provider,
        region=allocation.region,
        master_addr=rank0.host,
        master_port=master_port,
    )
    if not checkpoint_dir:
        del variables["INTERCLOUD_CHECKPOINT_DIR"]
    return Assignment(
        job_id=command.job_id,
        attempt=command.attempt,
        rank=command.rank,
        run=command.run,
        setup=command.setup,
        num_nodes=command.num_nodes,
        env={**command.env, **variables},
        grace_s=grace_s,
    )
