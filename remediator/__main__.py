"""``python -m remediator`` is the ``remediator`` command."""

from remediator.app.cli import main

raise SystemExit(main())
