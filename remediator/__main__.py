"""``python -m remediator`` is the ``remediator`` command."""

from remediator.cli import main

raise SystemExit(main())
