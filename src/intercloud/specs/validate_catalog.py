"""Name resolution and the checks that need a catalog.

``Vocabulary`` resolves accelerator and provider names (the built-in tables, plus the
catalog's names when one is given). ``check_resources`` runs the catalog-dependent
checks on a converted ``ResourceRequest``: instance types, regions, whether anything
sells the requested accelerators, and whether an ``nvlink_domain`` gang can fit in one
NVLink domain. Without a catalog these checks are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intercloud.model import (
    ACCELERATORS,
    KNOWN_PROVIDERS,
    AcceleratorRequest,
    Offering,
    ResourceRequest,
    Topology,
    canonical_accelerator,
    canonical_provider,
)
from intercloud.specs.errors import SpecProblem, suggest

if TYPE_CHECKING:  # keep numpy (pulled in by intercloud.catalog) out of import time
    from intercloud.catalog import Catalog


def offering_accelerator(o: Offering) -> str | None:
    """The canonical accelerator name of an offering (its own spelling if unknown)."""
    if not o.accelerator:
        return None
    return canonical_accelerator(o.accelerator) or o.accelerator


class Vocabulary:
    """Known accelerator and provider names, optionally extended by a catalog."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self._catalog_acc: dict[str, str] = {}
        self._catalog_providers: set[str] = set()
        if catalog is not None:
            for name in catalog.accelerators:
                self._catalog_acc.setdefault(name.lower(), name)
            self._catalog_providers = {canonical_provider(p) for p in catalog.providers}

    def accelerator(self, name: str, path: str) -> str:
        """Canonical name of ``name`` or ``SpecProblem`` with a suggestion."""
        canon = canonical_accelerator(name)
        if canon is not None:
            return canon
        from_catalog = self._catalog_acc.get(name.strip().lower())
        if from_catalog is not None:
            return from_catalog
        known = [*ACCELERATORS, *self._catalog_acc.values()]
        raise SpecProblem(path, f"unknown accelerator '{name}'{suggest(name, known)}")

    def provider(self, name: str, path: str) -> str:
        """Canonical lower-case provider name or ``SpecProblem``."""
        canon = canonical_provider(name)
        if canon in KNOWN_PROVIDERS or canon in self._catalog_providers:
            return canon
        known = sorted({*KNOWN_PROVIDERS, *self._catalog_providers})
        tip = suggest(name, known) or f" (known: {', '.join(known)})"
        raise SpecProblem(path, f"unknown provider '{name}'{tip}")

    def zones(
        self, names: list[str], path: str, providers: frozenset[str] | None = None
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Every spelling of the zones ``names`` (name and AWS zone id) and the regions
        they lie in.

        A zone is known if a catalog row carries it, if it is an AWS zone name or id
        (``catalog.zones``; without a catalog every AWS spelling is accepted), or if it
        is a region followed by a zone letter (``us-central1-a``) where neither the
        catalog nor the AWS table lists that region's zones. Otherwise
        ``SpecProblem`` at ``path[i]``: an unknown zone is bad input.
        """
        from intercloud.catalog.zones import aws_zone, aws_zone_spellings

        by_zone: dict[str, str] = {}
        regions_known: set[str] = set()
        zoned: set[str] = set()  # regions whose rows name their zones
        if self.catalog is not None:
            for o in self.catalog.offerings:
                if providers is None or o.provider in providers:
                    regions_known.add(o.region)
                    if o.zone:
                        by_zone.setdefault(o.zone.lower(), o.region)
                        zoned.add(o.region)
        # A region-plus-letter zone is taken on trust only where nothing lists the zones.
        unlisted = {r for r in regions_known - zoned if aws_zone(r + "a") is None}
        spellings: set[str] = set()
        regions: set[str] = set()
        for i, name in enumerate(names):
            key = name.strip().lower()
            aws = aws_zone(key) if providers is None or "aws" in providers else None
            if key in by_zone:
                regions.add(by_zone[key])
                spellings.add(name)
            elif aws is not None and (self.catalog is None or aws[0] in regions_known):
                regions.add(aws[0])
            elif (region := _region_of(key, unlisted)) is not None:
                regions.add(region)
            elif self.catalog is None:
                spellings.add(name)
                continue
            else:
                known = sorted({*by_zone, *aws_zone_spellings(regions_known)})
                tip = suggest(name, known) if known else ""
                raise SpecProblem(
                    f"{path}[{i}]", f"unknown zone '{name}' (not in the catalog){tip}"
                )
            spellings.add(name)
            if aws is not None:
                spellings.update(aws[1:])
                spellings.update({aws[1].lower(), aws[2].lower()})
        return frozenset(spellings), frozenset(regions)


def _region_of(zone: str, regions: set[str]) -> str | None:
    """``us-central1-a`` -> ``us-central1`` when that region is known."""
    for cut in (2, 1):
        head, tail = zone[:-cut], zone[-1:]
        if tail.isalpha() and head.rstrip("-") in {r.lower() for r in regions}:
            return next(r for r in regions if r.lower() == head.rstrip("-"))
    return None


@dataclass(frozen=True)
class ResourcePaths:
    """Where each part of a ``ResourceRequest`` was written in the user's file."""

    accelerators: str = "resources.accelerators"
    instance_type: str = "resources.instance_type"
    topology: str = "resources.topology"
    cpus: str = "resources.cpus"
    memory: str = "resources.memory"
    regions: Mapping[str, str] = field(default_factory=dict)  # region -> its path
    options: tuple[ResourcePaths, ...] = ()  # per ``ResourceRequest.alternatives`` item


def _fmt(gpus: float) -> str:
    return f"{gpus:g}"


def check_resources(
    res: ResourceRequest, catalog: Catalog | None, paths: ResourcePaths | None = None
) -> None:
    """Raise ``SpecProblem`` if ``res`` cannot be met by anything in ``catalog``.

    Promises: no-op when ``catalog`` is None or empty. Checks instance type (exists,
    carries a requested accelerator, has the vCPU/memory asked for, is sold by an allowed
    provider), allowed regions (exist in the catalog; denied ones are not checked),
    accelerators (at least one alternative is sold with that per-node count) and
    ``nvlink_domain`` (the gang's GPUs fit in the largest NVLink domain of some offering
    of an alternative; a domain size of 0 in the catalog counts as one instance).
    With ``res.alternatives`` (paths in ``paths.options``), names must be right in every
    alternative and the other checks must pass for at least one.
    """
    if catalog is None or not catalog.offerings:
        return
    p = paths or ResourcePaths()
    if res.alternatives:
        _check_alternatives(res, catalog, p)
        return
    offerings = catalog.offerings
    _check_regions(res.regions or frozenset(), catalog, p.regions, "resources.regions")
    if res.instance_type is not None:
        offerings = _check_instance_type(res, catalog, p)
    if not res.accelerators:
        return
    by_request = {req: _matching(offerings, req) for req in res.accelerators}
    sold = [req for req, rows in by_request.items() if rows]
    if not sold:
        _unsold(res.accelerators, catalog, p.accelerators)
    if res.topology is Topology.NVLINK_DOMAIN:
        _check_nvlink(res, by_request, p.topology)


def _check_alternatives(res: ResourceRequest, catalog: Catalog, p: ResourcePaths) -> None:
    """Names (regions, instance types) must exist in every alternative; the other checks
    fail only when no alternative passes them (the first alternative's problem is shown)."""
    per = p.options or tuple(ResourcePaths() for _ in res.alternatives)
    types = set(catalog.instance_types)
    for alt, ap in zip(res.alternatives, per, strict=True):
        _check_regions(alt.regions or frozenset(), catalog, ap.regions, "resources.regions")
        name = alt.instance_type
        if name is not None and name not in types:
            tip = suggest(name, catalog.instance_types)
            raise SpecProblem(ap.instance_type, f"unknown instance type '{name}'{tip}")
    problems: list[SpecProblem] = []
    for alt, ap in zip(res.alternatives, per, strict=True):
        try:
            check_resources(alt, catalog, ap)
        except SpecProblem as problem:
            problems.append(problem)
        else:
            return
    raise problems[0]


def _matching(offerings: Iterable[Offering], req: AcceleratorRequest) -> list[Offering]:
    return [
        o
        for o in offerings
        if o.accelerator_count == req.count and offering_accelerator(o) == req.name
    ]


def _check_regions(
    regions: Iterable[str], catalog: Catalog, paths: Mapping[str, str], default: str
) -> None:
    if not regions:
        return
    known = catalog.regions  # kept on the catalog: a scan of every row per spec otherwise
    for region in sorted(regions, key=lambda r: paths.get(r, default)):
        if region not in known:
            path = paths.get(region, default)
            tip = suggest(region, known)
            raise SpecProblem(path, f"unknown region '{region}' (no offering in the catalog){tip}")


def _check_instance_type(
    res: ResourceRequest, catalog: Catalog, p: ResourcePaths
) -> tuple[Offering, ...]:
    name = res.instance_type or ""
    rows = tuple(o for o in catalog.offerings if o.instance_type == name)
    if not rows:
        tip = suggest(name, catalog.instance_types)
        raise SpecProblem(p.instance_type, f"unknown instance type '{name}'{tip}")
    allowed = [
        o
        for o in rows
        if (res.providers is None or o.provider in res.providers)
        and o.provider not in res.deny_providers
    ]
    if not allowed:
        sellers = ", ".join(sorted({o.provider for o in rows}))
        raise SpecProblem(
            p.instance_type, f"{name} is sold only by {sellers}, which the spec does not allow"
        )
    first = allowed[0]
    if res.accelerators and not any(_matching(allowed, req) for req in res.accelerators):
        carries = (
            f"{offering_accelerator(first)}:{first.accelerator_count}"
            if first.is_gpu
            else "no accelerators"
        )
        wanted = ", ".join(str(r) for r in res.accelerators)
        raise SpecProblem(p.instance_type, f"{name} carries {carries}, not {wanted}")
    if res.cpus is not None:
        vcpus = max(o.vcpus for o in allowed)
        if vcpus < res.cpus or (res.cpus_exact and vcpus != res.cpus):
            need = _fmt(res.cpus) if res.cpus_exact else f"at least {_fmt(res.cpus)}"
            raise SpecProblem(p.cpus, f"{name} has {_fmt(vcpus)} vCPUs, not {need}")
    if res.memory_gib is not None:
        mem = max(o.memory_gib for o in allowed)
        if mem < res.memory_gib:
            raise SpecProblem(
                p.memory, f"{name} has {_fmt(mem)} GiB of memory, less than {_fmt(res.memory_gib)}"
            )
    return tuple(allowed)


def _unsold(reqs: tuple[AcceleratorRequest, ...], catalog: Catalog, path: str) -> None:
    parts = []
    for req in reqs:
        counts = sorted(
            {o.accelerator_count for o in catalog.offerings if offering_accelerator(o) == req.name}
        )
        sold = (
            f"{req.name} comes in {', '.join(map(str, counts))} per node"
            if counts
            else (f"no offering has {req.name}")
        )
        parts.append(sold)
    wanted = ", ".join(str(r) for r in reqs)
    raise SpecProblem(path, f"no catalog offering sells {wanted} per node ({'; '.join(parts)})")


def _check_nvlink(
    res: ResourceRequest,
    by_request: dict[AcceleratorRequest, list[Offering]],
    path: str,
) -> None:
    details = []
    for req, rows in by_request.items():
        if not rows:
            continue
        gpus = req.count * res.num_nodes
        # nvlink_domain_gpus 0 means the catalog does not say: assume one instance.
        largest = max(o.nvlink_domain_gpus or o.accelerator_count for o in rows)
        if gpus <= largest:
            return
        details.append((gpus, req, largest))
    if not details:
        return
    gpus = details[0][0]
    listed = ", ".join(f"{req} (largest: {largest} GPUs)" for _, req, largest in details)
    if len(details) == 1:
        _, req, largest = details[0]
        problem = f"{gpus} GPUs cannot share one NVLink domain on {req} (largest: {largest} GPUs)"
    else:
        problem = f"the gang cannot share one NVLink domain on any of {listed}"
    raise SpecProblem(path, problem)
