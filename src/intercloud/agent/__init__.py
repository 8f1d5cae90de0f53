"""The node agent: the program user-data starts on every instance intercloud launches.

``python -m intercloud.agent`` enrols with the control plane's agent server, heartbeats,
runs its instance's assignment (``setup`` then ``run``) under the local provider's node
supervisor (``providers.local_shim``: same environment rules, process groups, kill
semantics and log format as a local node), streams its output and reports its exit
code. Standard library only, so it needs nothing on the node but intercloud itself.

Modules: ``protocol`` (the wire contract, shared with ``control.agent_server``),
``bootstrap`` (user-data and secrets), ``settings`` (environment, instance metadata),
``client`` (HTTP with back-off), ``runs`` (one assignment on disk), ``main`` (the loop).
"""
