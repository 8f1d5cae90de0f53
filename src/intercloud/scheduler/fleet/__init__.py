"""Fleet state for the fleet scheduler: pools of nodes as numpy arrays with incremental
aggregates, so that a decision never scans the whole fleet."""
