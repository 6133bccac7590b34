"""The Azure Functions entry file: ``PYTHON_SCRIPT_FILE_NAME=functions_entry.py``.

The Python worker imports this module by its stem and indexes the one ``FunctionApp`` it holds.
It is not called ``function_app.py`` because the ``function_app/`` package would shadow it
(``function_app/README.md``).
"""

from function_app.app import app

__all__ = ["app"]
