"""Deployment settings: one YAML file and ``REMEDIATOR_*`` environment variables, validated at
file:line, read by ``serve``, ``scan``, ``doctor`` and the Functions app.
"""
