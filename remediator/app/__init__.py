"""The application shell and composition root: the CLI (``cli/``, a module per command), the
wiring of stores, Azure clients and adapters (``wiring``), the demo, ``doctor`` and the console chat.
"""
