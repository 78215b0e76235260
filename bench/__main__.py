"""Entry point of `python -m bench` (what `make bench` runs)."""

from bench.run import main

raise SystemExit(main())
