"""Bounds on the numbers a spec may hold, each with its reason.

Integers end up in the store (SQL ``INTEGER``: 32-bit signed on PostgreSQL) or multiply
into plans; beyond these bounds a value is a typo or hostile input, refused with the
field named instead of overflowing later.
"""

from __future__ import annotations

#: The largest value of a 32-bit signed SQL INTEGER (PostgreSQL's INTEGER).
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
#: Nodes of one gang (training) or one replica (service): 131,072 GPUs at 8 per node,
#: more than any cluster built so far.
MAX_NODES = 16_384
#: Independent tasks of one batch job.
MAX_BATCH_TASKS = 1_000_000
#: Replicas of one service.
MAX_REPLICAS = 10_000
#: Accelerators per node (a GB200 NVL72 node has 4; an HGX board 8 or 16).
MAX_ACCELERATORS_PER_NODE = 1024
#: vCPUs or GiB per node (the largest instances have a few hundred vCPUs and 32 TiB).
MAX_QUANTITY = 1_000_000.0
#: A duration or checkpoint interval: ten years, in hours.
MAX_DURATION_HOURS = 24 * 365 * 10.0
#: USD per hour, GB of data, requests per second: far beyond any real value.
MAX_AMOUNT = 1e12
#: Bytes of one argument or ``KEY=VALUE`` environment string a Linux process can take
#: (MAX_ARG_STRLEN, 32 pages, less the NUL): ``run`` and ``setup`` go to ``bash -c``.
MAX_ARG_BYTES = 128 * 1024 - 1
