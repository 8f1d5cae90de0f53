"""Durable state: SQLAlchemy tables, Alembic migrations, and ``Store``, the one API the
rest of intercloud uses to read and change it.

```python
store = open_store()                       # $INTERCLOUD_DB_URL or ~/.intercloud/state.db
job = store.submit("training", "llama", spec_text)
rec = store.transition(job, "PENDING", "PLACING", "scheduling", expected_version=1)
```
"""

from intercloud.store.engine import (
    HEAD_REVISION,
    database_url,
    intercloud_home,
    normalize_url,
    open_store,
)
from intercloud.store.errors import (
    InvalidRequest,
    NodeAlreadyStarted,
    StoreError,
    TenantExists,
    UnknownTenant,
    UnknownWorkload,
)
from intercloud.store.records import (
    AttemptRecord,
    Desired,
    EventRecord,
    NodeRecord,
    NodeState,
    SpecFormat,
    TenantRecord,
    TenantUsage,
    WorkloadKind,
    WorkloadRecord,
)
from intercloud.store.repository import (
    TENANT_FIELDS,
    UPDATABLE_FIELDS,
    Store,
    check_tenant_fields,
    utc_now,
)

__all__ = [
    "HEAD_REVISION",
    "TENANT_FIELDS",
    "UPDATABLE_FIELDS",
    "AttemptRecord",
    "Desired",
    "EventRecord",
    "InvalidRequest",
    "NodeAlreadyStarted",
    "NodeRecord",
    "NodeState",
    "SpecFormat",
    "Store",
    "StoreError",
    "TenantExists",
    "TenantRecord",
    "TenantUsage",
    "UnknownTenant",
    "UnknownWorkload",
    "WorkloadKind",
    "WorkloadRecord",
    "check_tenant_fields",
    "database_url",
    "intercloud_home",
    "normalize_url",
    "open_store",
    "utc_now",
]
