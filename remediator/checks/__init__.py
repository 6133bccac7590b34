"""Value checks of action parameters that import no pydantic (and nothing of the actions).

The actions' ``Params`` models name these functions as their validators (``field_validator(...)(check)``,
``model_validator(mode="after")(check)``, or :func:`per_class` where a check depends on the class),
and ``remediator validate``'s fast path (``remediator.playbooks.fastcheck``) calls the very same
functions, so both accept and refuse the same values. A check takes the value (a model-level check:
an object with the model's fields as attributes) and returns it, possibly normalised, or raises
``ValueError`` with one line naming the bad item and what would be valid.

A validator written as a method is left to the full loader (correct, but ``validate`` then imports
pydantic and every action for any playbook that gives that parameter). To move one here::

    # before, in remediator/actions/<service>.py        # after
    @field_validator("roles")                            # remediator/checks/params.py:
    @classmethod                                         def rbac_roles(value: list[str]) -> list[str]:
    def _roles(cls, value: list[str]) -> list[str]:          ...the same body...
        ...                                              # remediator/actions/<service>.py:
                                                         _roles = field_validator("roles")(checks.rbac_roles)

A model validator (``@model_validator(mode="after")``) becomes ``model_validator(mode="after")(check)``
with ``check(params)`` reading the fields as attributes; a check that needs the class's data is
``field_validator(...)(per_class(check, lambda cls: {...}))``. Then regenerate ``validate``'s schema:
``python -m remediator.playbooks.fastcheck_schema``.

Modules: ``params`` (the checks), ``ports`` (NSG port ranges and their arithmetic).
"""
