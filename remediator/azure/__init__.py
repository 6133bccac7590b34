"""The Azure edge: credentials and lazily built SDK clients (``credentials``, ``clients``), what an
ARM error means and the retry above azure-core's (``errors``), ARM's pace (``pace``), the live
state reader (``reader``), Resource Graph (``graph``) and the state port (``state``).

Nothing here imports a management SDK or azure.identity at module import time; the first use of a
client, or the first token request, does.
"""
