"""The remediation life cycle, a module per concept:

``model``       Remediation, its states and the transitions table; votes, inbox rows, audit events, jobs
``chain``       the audit trail's hash-chained record format
``store``       the Store port (implemented by ``remediator.store``); ``chat``: the ChatPort (``bot/``, the console)
``approval``    who may approve what: named checks and what approval still needs, as data
``text``        words for a person that name people by id (the adapters render the mentions)
``reports``     the ports the admins' doctor and report commands run on (given by the wiring)
``codec``       a Finding and its Changes as the JSON a remediation stores
``jobs``        a typed payload per queued job kind, and its encoding
``resolution``  findings reported healthy: the signal and the keys it matches
``runtime``     the ports and the store moves the engine and the worker share
``opening``     what a planned result becomes (the decision) and its first audit
``applying``    the apply job: re-check, elevate, apply, verify, and every ending
``worker``      one job at a time: planning, announcing, chat messages, withdrawal
``export_watch`` Defender's continuous export: checked per subscription by the reconcile, silence told once
``engine``      the front: ingest, approval clicks, undo, pause, sweep, reconcile
"""
