"""``python -m synthesia_watchd.simulator``: run the loopback Synthesia until interrupted."""

from __future__ import annotations

from . import main

raise SystemExit(main())
