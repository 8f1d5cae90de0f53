"""PROVISIONING: claim (``record_node_starting``), start and record every rank not yet
started -> RUNNING once every rank has started; a rank that failed to start ->
RECOVERING (``recovering.fail``)."""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.jobs.allocation import job_placement, request
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.nodes import launch, outcome, resume_starting
from intercloud.control.jobs.recovering import fail
from intercloud.control.states import JobState
from intercloud.providers.base import Allocation, Provider, ProviderError
from intercloud.store import NodeRecord, NodeState, WorkloadRecord
from intercloud.store.errors import NodeAlreadyStarted as NodeAlreadyClaimed

S = JobState


def start(
    ctx: JobContext,
    w: WorkloadRecord,
    provider: Provider | None = None,
    allocation: Allocation | None = None,
    *,
    fresh: bool = False,
) -> bool:
    """PROVISIONING: claim and start every rank not yet started -> RUNNING. Without
    ``allocation`` it is asked again of the provider (same request id: the existing one).
    ``fresh``: the attempt began in this step (``placing.provision``), so it has no node
    yet and none is read (a claim is exclusive whatever was read: ``NodeAlreadyClaimed``)."""
    ranks = job_placement(w).ranks
    nodes = [] if fresh else ctx.store.nodes(w.id, w.attempt)
    out = outcome(nodes, ranks)
    if out.failed_rank is not None:
        return fail(ctx, w, out)
    if provider is None or allocation is None:
        provider, req = request(ctx, w)
        allocation = provider.provision(req)  # the existing one: same request id
    wl = ctx.workload(w)
    if isinstance(wl, str):
        raise ProviderError(wl)  # cannot happen: it was parsed to be placed
    by_rank = {n.rank: n for n in nodes}
    changed = False
    for rank in range(ranks):
        node = by_rank.get(rank)
        if node is None:
            try:
                ctx.store.record_node_starting(w.id, w.attempt, rank, provider.name)
            except NodeAlreadyClaimed:
                continue  # claimed meanwhile: resolved on a later step
            ctx.crashpoint("starting")
            changed |= launch(ctx, w, wl, provider, allocation, rank, ranks)
        elif node.state is NodeState.STARTING:
            changed |= resume_starting(ctx, w, wl, provider, allocation, node, ranks)
    # every rank of the attempt live (in the store's image of live nodes, which holds
    # this step's own writes): none ended, so these are all its nodes; else read them
    nodes = [n for n in ctx.store.live_nodes_of(w.id) if n.attempt == w.attempt]
    if len(nodes) != ranks:
        nodes = ctx.store.nodes(w.id, w.attempt)
    out = outcome(nodes, ranks)
    if out.failed_rank is not None:
        return fail(ctx, w, out) or changed
    if out.started:
        rec = ctx.store.transition(
            w.id,
            S.PROVISIONING,
            S.RUNNING,
            f"all {ranks} node(s) started",
            expected_version=w.version,
        )
        if rec is not None:
            changed = True
            ctx.crashpoint("running")
    return changed


def handle(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """The PROVISIONING handler (``JobHandler``)."""
    return start(ctx, w)
