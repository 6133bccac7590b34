"""The remediation life cycle: ``Remediation`` and its states (``model``), the hash-chained trail's
record format (``chain``), the ports it runs on (``store``, ``chat``), approval requirements
(``approval``), and the engine and worker that move a remediation from planned to applied.
"""
