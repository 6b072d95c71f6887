"""A rebuild spread over several processes, tenants shared out between them.

Tenants are independent all the way down (their own log, head lock, rows and shadow
tables), so N processes, each with its own connections, rebuild N groups of tenants at
once; on a machine with cores to spare the Python replay of one overlaps the database
work of another. Tenants go to the least-loaded group, largest logs first.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import psycopg

from ledger.audit.auditor import TenantHead
from projections.read_models import select
from projections.rebuild import DEFAULT_BATCH
from projections.rebuild import RebuildReport
from projections.rebuild import rebuild


def share_out(tenants: Sequence[TenantHead], jobs: int) -> list[list[TenantHead]]:
    groups: list[list[TenantHead]] = [[] for _ in range(max(1, min(jobs, len(tenants))))]
    loads = [0] * len(groups)
    for tenant in sorted(tenants, key=lambda t: t.position, reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(tenant)
        loads[lightest] += tenant.position
    return groups


def _job(
    *,
    url: str,
    names: Sequence[str],
    verify: bool,
    tenants: list[TenantHead],
    batch: int,
    messages: Any,
) -> None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            report = rebuild(
                conn,
                select(names),
                verify=verify,
                tenants=tenants,
                batch=batch,
                on_progress=lambda n: messages.put(("progress", n)),
            )
        messages.put(("done", report))
    except Exception as exc:  # reported to the parent, which raises it
        messages.put(("failed", f"{type(exc).__name__}: {exc}"))


class RebuildJobFailedError(RuntimeError):
    """A job of a parallel rebuild failed (its tenants' live rows were left as they were
    unless their own transaction had committed)."""


def rebuild_in_parallel(
    url: str,
    names: Sequence[str],
    *,
    verify: bool,
    tenants: Sequence[TenantHead],
    jobs: int,
    batch: int = DEFAULT_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """`rebuild` over `jobs` processes (each connects with `url`, as the owner)."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(
            target=_job,
            kwargs={
                "url": url,
                "names": list(names),
                "verify": verify,
                "tenants": group,
                "batch": batch,
                "messages": messages,
            },
        )
        for group in share_out(tenants, jobs)
    ]
    for process in processes:
        process.start()
    merged, pending, failures = RebuildReport(), len(processes), []
    try:
        while pending:
            try:
                kind, payload = messages.get(timeout=1)
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    failures.append("a job exited without reporting")
                    break
                continue
            if kind == "progress":
                if on_progress is not None:
                    on_progress(payload)
                continue
            pending -= 1
            if kind == "failed":
                failures.append(payload)
            else:
                merged.tenants += payload.tenants
                merged.events += payload.events
                merged.differences.extend(payload.differences)
                merged.rows_replaced += payload.rows_replaced
    finally:
        for process in processes:
            process.join()
    if failures:
        raise RebuildJobFailedError("; ".join(failures))
    return merged
