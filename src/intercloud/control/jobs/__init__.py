"""The job reconcile step, one module per job state (``control.reconciler`` dispatches).

Every handler follows one recipe: load what the store says about the job (the record
the step read, its nodes), do the slow provider work outside any store write, then apply
the result guarded by the state it expects (and the version read, where a user request
could race with it), recorded as an event with its reason. A handler may be cut off at
any ``crashpoint``; the next step, on the same or a new loop, repeats it idempotently.

- ``pending``: placement (the decider's ``Place``/``Hold``/``Reject``/``Preempt``);
- ``placing``: provision the allocation (idempotent by request id) -> PROVISIONING;
- ``provisioning``: claim and start every rank -> RUNNING;
- ``running``: every rank exited 0 -> SUCCEEDED; a rank failed -> RECOVERING;
- ``recovering``: stop what is left of the attempt, then restart (PENDING) or FAIL;
- ``cancelling``: stop, release, end the attempt -> CANCELLED;
- ``nodes``: shared node work (observe, adopt, claim/start, teardown);
- ``allocation``: the stored placement -> provision request, release;
- ``context``: ``JobContext``, what every handler works with.
"""
