"""Value checks of action parameters that import no pydantic (and nothing of the actions).

The actions' ``Params`` models name these functions as their validators (``field_validator(...)(check)``,
``model_validator(mode="after")(check)``, or :func:`per_class` where a check depends on the class),
and ``remediator validate``'s fast path (``remediator.playbooks.fastcheck``) calls the very same
functions, so both accept and refuse the same values. A check takes the value (a model-level check:
an object with the model's fields as attributes) and returns it, possibly normalised, or raises
``ValueError`` with one line naming the bad item and what would be valid.

Modules: ``params`` (the checks), ``ports`` (NSG port ranges and their arithmetic).
"""
