"""`python -m oxtail_py` is the same as the `oxtail-py` console script."""

from oxtail_py.cli import main

raise SystemExit(main())
