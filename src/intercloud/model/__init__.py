"""Plain domain types shared by every layer. Depends on nothing else in intercloud."""

from intercloud.model.accelerator import (
    ACCELERATORS,
    Accelerator,
    canonical_accelerator,
    relative_throughput,
)
from intercloud.model.contract import (
    CAPACITY_BLOCK_EARLY_END,
    Contract,
    Payment,
    RampStep,
    ReservedBlock,
)
from intercloud.model.offering import Offering
from intercloud.model.placement import Exclusion, JobPlacement, Placement
from intercloud.model.pricing import PricingKind
from intercloud.model.provider import KNOWN_PROVIDERS, canonical_provider
from intercloud.model.workload import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    ResourceRequest,
    RestartPolicy,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
    Workload,
)

__all__ = [
    "ACCELERATORS",
    "CAPACITY_BLOCK_EARLY_END",
    "KNOWN_PROVIDERS",
    "Accelerator",
    "AcceleratorChoice",
    "AcceleratorRequest",
    "BatchJob",
    "Contract",
    "DataLocation",
    "Exclusion",
    "JobPlacement",
    "Offering",
    "Payment",
    "Placement",
    "PricingKind",
    "RampStep",
    "ReservedBlock",
    "ResourceRequest",
    "RestartPolicy",
    "Service",
    "SpotPolicy",
    "Topology",
    "TrainingJob",
    "Workload",
    "canonical_accelerator",
    "canonical_provider",
    "relative_throughput",
]
