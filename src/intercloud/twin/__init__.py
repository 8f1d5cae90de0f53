"""The digital twin: trace readers (``twin.traces``), synthetic traces
(``twin.synthetic``), fleet descriptions (``twin.fleet_spec``) and synthetic fleets
(``twin.fleets``), and the discrete-event engine that feeds the scheduler core
(``twin.engine.simulate``) with its failure models (``twin.failures``), metrics
(``twin.metrics``) and report files (``twin.report_files``)."""
