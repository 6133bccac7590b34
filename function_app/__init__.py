"""remediator on Azure Functions (Python v2 programming model, blueprints).

The worker indexes ``functions_entry.py`` at the app root (``PYTHON_SCRIPT_FILE_NAME``), which
imports the one ``FunctionApp`` from ``function_app.app``; see ``function_app/README.md``.

Nothing here imports the engine, the management SDKs, azure.identity or slack_bolt at import
time: ``function_app.runtime`` builds them on first use.
"""
