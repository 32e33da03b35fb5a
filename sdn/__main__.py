"""python -m sdn: the same as the `sdn` console script."""
import sys

from sdn.main import main

sys.exit(main())
