"""``python -m eqsat_ad.cli`` is ``eqsat-ad``."""
import sys

from . import main

sys.exit(main())
