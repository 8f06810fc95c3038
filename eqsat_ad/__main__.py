"""``python -m eqsat_ad`` is ``eqsat-ad``."""
import sys

from .cli import main

sys.exit(main())
