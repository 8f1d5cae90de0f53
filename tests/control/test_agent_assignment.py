"""Assignments for node agents carry the local provider's node environment."""

from __future__ import annotations

import pytest

from intercloud.control.agent_assignment import assignment_for
from intercloud.providers.base import Allocation, NodeCommand, NodeSlot


def alloc() -> Allocation:
    nodes = (NodeSlot(1, "10.0.0.2", (0, 1)), NodeSlot(0, "10.0.0.1", (0, 1)))
    return Allocation("a1", "aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes)


def command(**kw: object) -> NodeCommand:
    base: dict[str, object] = {
        "job_id": "7",
        "attempt": 2,
        "rank": 1,
        "num_nodes": 2,
        "setup": "pip list",
        "run": "train",
        "env": {"LR": "0.1", "RANK": "spoofed"},
        "log_dir": "",
        "checkpoint_dir": "/local/only",
    }
    base.update(kw)
    return NodeCommand(**base)  # type: ignore[arg-type]


def test_environment_is_the_commands_under_the_node_variables() -> None:
    a = assignment_for(alloc(), command(), checkpoint_dir="/mnt/ckpt/7", master_port=29400)
    assert (a.key, a.setup, a.run, a.num_nodes) == ("7/2/1", "pip list", "train", 2)
    env = a.env
    assert env["LR"] == "0.1" and env["RANK"] == "1"  # the provider's variables win
    assert env["MASTER_ADDR"] == "10.0.0.1" and env["MASTER_PORT"] == "29400"
    assert env["INTERCLOUD_NODE_IPS"] == "10.0.0.1\n10.0.0.2"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["INTERCLOUD_GPUS_PER_NODE"] == "2"
    assert env["INTERCLOUD_CHECKPOINT_DIR"] == "/mnt/ckpt/7"
    assert env["INTERCLOUD_PROVIDER"] == "aws" and env["WORLD_SIZE"] == "2"


def test_no_checkpoint_dir_leaves_it_to_the_agent_and_bad_commands_fail() -> None:
    assert "INTERCLOUD_CHECKPOINT_DIR" not in assignment_for(alloc(), command()).env
    with pytest.raises(ValueError, match="rank"):
        assignment_for(alloc(), command(rank=5))
    with pytest.raises(ValueError, match="workdir"):
        assignment_for(alloc(), command(workdir="/tmp/x"))
