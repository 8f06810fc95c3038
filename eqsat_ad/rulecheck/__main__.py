"""``python -m eqsat_ad.rulecheck [FILES]``: the same as ``eqsat-ad rules check``."""
import sys

from . import main

sys.exit(main())
