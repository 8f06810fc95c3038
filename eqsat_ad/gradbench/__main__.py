"""``python -m eqsat_ad.gradbench``: the GradBench tool (see :mod:`eqsat_ad.gradbench`)."""
import os
import sys

if "--multithreaded" not in sys.argv:
    # GradBench runs tools single-threaded unless told otherwise: one BLAS thread, set before
    # NumPy is imported
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_v, "1")

from . import main  # noqa: E402

sys.exit(main())
