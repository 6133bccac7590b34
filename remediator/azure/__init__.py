"""Azure adapters: lazily built SDK clients and the live state reader.

Nothing here imports a management SDK at module import time; the first use of a client does.
"""
