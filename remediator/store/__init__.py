"""Stores: the ``Store`` protocol and its SQLite (default) and Azure Tables/Queues implementations."""

from remediator.store.base import (
    FINAL_STATES,
    OPEN_STATES,
    STATES,
    ApprovalVote,
    AuditEvent,
    Job,
    Remediation,
    State,
    Store,
)

__all__ = ["FINAL_STATES", "OPEN_STATES", "STATES", "ApprovalVote", "AuditEvent", "Job", "Remediation", "State",
           "Store"]
