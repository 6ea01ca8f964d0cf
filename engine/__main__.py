"""``python -m engine``: the Switchyard command line."""

from engine.cli import main

raise SystemExit(main())
