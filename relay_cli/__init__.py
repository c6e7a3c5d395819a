"""The `relay` operator command line (installed in the venv, not shipped in the Lambda layer)."""
