"""The app settings that ``function_app`` itself reads, beside the engine's (``remediator.config.settings``).

Binding expressions (``%NAME%``) are resolved by the Functions host from app settings, so queue
and hub names, the consumer group and the timer schedule are deployment settings rather than
code. Connections name a *prefix*: ``EVENTHUB_CONNECTION`` is satisfied by
``EVENTHUB_CONNECTION__fullyQualifiedNamespace`` (+ ``__credential``/``__clientId``: an
identity-based connection, no secret), or by a connection string in ``EVENTHUB_CONNECTION``
itself for local development.

``infra/main.bicep``, ``local.settings.example.json`` and ``docs/deploy.md`` set and document
every name here; ``tests/function_app/test_settings_coverage.py`` checks that they do.
"""

from __future__ import annotations

# Event Hub trigger (Defender continuous export)
EVENTHUB_CONNECTION = "EVENTHUB_CONNECTION"
EVENTHUB_NAMESPACE = EVENTHUB_CONNECTION + "__fullyQualifiedNamespace"
EVENTHUB_NAME = "EVENTHUB_NAME"
EVENTHUB_CONSUMER_GROUP = "EVENTHUB_CONSUMER_GROUP"

# Queue trigger (the apply worker): the store's own connection string and queue name, so the
# trigger listens exactly where ``AzureStore.enqueue`` writes (``azure://<prefix>`` → ``<prefix>-jobs``).
STORAGE_CONNECTION = "REMEDIATOR_STORAGE_CONNECTION"  # == remediator.store.CONNECTION_ENV (tested)
JOBS_QUEUE = "JOBS_QUEUE"
POISON_SUFFIX = "-poison"  # the Functions host moves a message here after maxDequeueCount deliveries
URGENT_SUFFIX = "-urgent"  # the urgent lane's queue (remediator.store.azure.URGENT_SUFFIX)

# Timer trigger (expiry, reminders, lost applies): an NCRONTAB expression with seconds
SWEEP_SCHEDULE = "SWEEP_SCHEDULE"
# Timer trigger of the backlog scan and reconcile (daily by default in the deployment: 0 0 3 * * *)
RECONCILE_SCHEDULE = "RECONCILE_SCHEDULE"

# The executor identity's client id: azure.identity's managed identity credential reads it
# (a Function App with several user-assigned identities must say which one writes)
EXECUTOR_CLIENT_ID = "AZURE_CLIENT_ID"

# Settings this package reads, for the coverage test and docs/deploy.md
OWN_SETTINGS: tuple[str, ...] = (
    EVENTHUB_NAMESPACE, EVENTHUB_NAME, EVENTHUB_CONSUMER_GROUP, STORAGE_CONNECTION, JOBS_QUEUE, SWEEP_SCHEDULE,
    RECONCILE_SCHEDULE, EXECUTOR_CLIENT_ID,
)
