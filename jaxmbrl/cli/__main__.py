"""``python -m jaxmbrl.cli``: the ``jaxmbrl`` command."""

from jaxmbrl.cli import main

raise SystemExit(main())
