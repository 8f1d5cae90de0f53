"""The digital twin: trace readers (``twin.traces``), synthetic fleets and tenants
(``twin.fleets``), and, later, the discrete-event engine that feeds the scheduler core."""
