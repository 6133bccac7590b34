"""remediator: Defender for Cloud findings → YAML playbooks → exact, approved, PIM-scoped fixes."""

__version__ = "0.1.0"
