"""The application shell and composition root: the CLI, wiring of stores, clients and adapters,
the demo, ``doctor`` and the console chat.
"""
