"""Job state machines and the reconcile loop (desired state in the store vs the providers)."""
