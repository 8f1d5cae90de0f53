"""What a new leader does, before its recovery, with the local-provider nodes that a dead
leader of another home (same host, same database) claimed and may have started.

A claimed node whose start is unknown is started again only if the provider proves it
never started (``jobs.nodes.resume_starting``), and the local provider looks for that
proof under its own home's root. The dead leader's shim lives under the other home's
root, so the proof would be wrong and the node would run twice at once. This step looks
for those shims among this host's processes (their command line names their node
directory, ``<root>/<store id>/jobs/<job>/attempt-<a>/node-<r>``) and records each one
found as the node's run (``running``, with its pid, start time and node directory);
``Reconciler.recover`` then adopts it like any other. A claim with no live shim is left
to the usual path (started here). Nodes on another host are beyond its reach (see
``control.leadership``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from intercloud.providers.base import Provider
from intercloud.providers.local import LocalProvider, process_start_time
from intercloud.store import NodeState, Store

log = logging.getLogger("intercloud.control.daemon")


def _command_lines() -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of this host's processes that can be read."""
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    if pids:
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            yield pid, [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        return
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        yield proc.info["pid"], list(proc.info["cmdline"] or ())


def adopt_other_homes_starts(store: Store, providers: Mapping[str, Provider]) -> int:
    """Record as running every claimed (``starting``) local-provider node whose shim runs
    under another root of this store on this host; how many were recorded."""
    wanted: dict[str, tuple[int, int, int, str | None, Path]] = {}
    for n in store.live_nodes():
        provider = providers.get(n.provider)
        if n.state is not NodeState.STARTING or not isinstance(provider, LocalProvider):
            continue
        own = provider.node_dir(str(n.workload_id), n.attempt, n.rank)
        # from the store's folder down: the same in every home's root of this store
        tail = os.sep + str(own.relative_to(provider.root.parent))
        wanted[tail] = (n.workload_id, n.attempt, n.rank, n.host, own)
    if not wanted:
        return 0
    found = 0
    for pid, argv in _command_lines():
        for arg in argv:
            key = next((t for t in wanted if arg.endswith(t)), None)
            if key is None or Path(arg) == wanted[key][4]:
                continue  # not a node of ours, or under our own root (the usual path)
            start = process_start_time(pid)
            if start is None:
                continue  # gone meanwhile: nothing to adopt
            job, attempt, rank, host, _ = wanted.pop(key)
            extra = {"node_dir": arg, "pid": pid, "start_time": start}
            store.record_node_started(job, attempt, rank, host or "", pid, start, extra=extra)
            log.info("node %s/%s/%s: adopted the run of another home (%s)", job, attempt, rank, arg)
            found += 1
            break
    return found
