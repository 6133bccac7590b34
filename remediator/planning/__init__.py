"""The dry run: a finding matched to a playbook, planned by its actions against saved or live state,
nothing written. ``planner`` runs it, ``result`` is one record's outcome, ``render`` prints it as a
Terraform-like plan.
"""
