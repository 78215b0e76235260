"""`python -m service` runs the same CLI as the `videocalls` console script."""

from service.cli import main

raise SystemExit(main())
