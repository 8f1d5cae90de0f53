"""End to end on moto: launch with the agent's user-data, boot each instance in a
sandbox from the user-data EC2 gives back, and run a two-node job through the agents."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boot import boot, read_user_data

from agent_helpers import insert_instance, job, wait_for
from intercloud.agent.bootstrap import new_bootstrap_secret, render_user_data
from intercloud.control.agent_logs import agent_log_path
from intercloud.control.agent_server import AgentServer
from intercloud.providers.aws import AwsProvider
from intercloud.providers.contract import LaunchRequest
from intercloud.store import Store, open_store
from intercloud.store.records import AssignmentState
from node_processes import leftovers_killed

P5 = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def test_user_data_boots_agents_that_run_a_gang(
    provider: AwsProvider, ec2: Any, store: Store, tmp_path: Path
) -> None:
    server = AgentServer(store, "127.0.0.1", 0, tmp_path / "logs", heartbeat_s=1.0)
    server.start()
    vms = []
    try:
        bootstrap = new_bootstrap_secret()
        rendered = render_user_data(server.url, "boot-1", bootstrap)
        provider.launch(
            LaunchRequest("boot-1", P5, count=2, job_id="7", user_data=rendered.encode())
        )
        assert provider.wait_launches(timeout=30)
        observed = provider.observe().of_request("boot-1")
        assert [i.rank for i in observed] == [0, 1]
        ids = {
            i.rank: insert_instance(
                store,
                "boot-1",
                i.rank,
                secret=bootstrap,
                state="running",
                provider_instance_id=i.instance_id,
            )
            for i in observed
        }
        for inst in observed:
            assert read_user_data(ec2, inst.instance_id) == rendered
            vms.append(boot(ec2, inst.instance_id, tmp_path / f"vm-{inst.rank}"))

        def enrolled() -> bool:
            recs = [store.get_instance(i) for i in ids.values()]
            return all(r is not None and r.secret_hash for r in recs)

        wait_for(enrolled, what="both agents enrolled")
        for rank, iid in ids.items():
            env = {"RANK": str(rank), "WORLD_SIZE": "2", "INTERCLOUD_JOB_ID": "7"}
            a = job("echo rank $RANK of $WORLD_SIZE; exit $RANK", rank=rank, num_nodes=2, env=env)
            assert store.agent_assign(iid, a) is not None

        def exited() -> bool:
            recs = [store.get_instance(i) for i in ids.values()]
            return all(r is not None and r.assignment_state is AssignmentState.EXITED for r in recs)

        wait_for(exited, what="both nodes exited")
        for rank, iid in ids.items():
            rec = store.get_instance(iid)
            assert rec is not None and rec.exit_code == rank
            assert rec.extra is not None
            assert rec.extra["agent"]["instance_id"] == rec.provider_instance_id
            log = agent_log_path(tmp_path / "logs", "7", 1, rank).read_text()
            assert f"rank {rank} of 2\n" in log
        for vm in vms:
            boot_log = vm.boot_log.read_text()
            assert "pip" not in boot_log  # intercloud was importable: no install
            assert (vm.agent_home / "token").stat().st_mode & 0o777 == 0o600
    finally:
        codes = [vm.stop() for vm in vms]
        server.stop()
    # a shutdown ends the boot script by SIGTERM as it ends everything; the agents
    # stop cleanly (no traceback, no restart) and leave nothing running
    assert all(c in (0, -signal.SIGTERM) for c in codes), codes
    for vm in vms:
        text = vm.boot_log.read_text()
        assert "Traceback" not in text and "restarting" not in text, text
        assert leftovers_killed(vm.sandbox) == []
