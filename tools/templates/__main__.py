"""`python -m tools.templates [--check] [--out DIR]`."""

import sys

from tools.templates.build import main

sys.exit(main())
