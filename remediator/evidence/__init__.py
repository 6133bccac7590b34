"""Audit evidence: the hash-chained trail (``chain``), its verification (``verify``), and the
evidence report (``report``: figures from the store; ``render``: HTML with charts, Markdown, CSV,
JSON; ``period``: ``q3``, ``2026-Q3``, ``last 30d``, ``2026-07-01..2026-09-30``).

Kept light on import: the stores import ``remediator.lifecycle.chain`` on every start.
"""
