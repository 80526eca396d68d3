"""Reference pixel->sky values from astropy for core/tests/wcs_test.cpp.

Usage: wcs_astropy_reference.py GRID_FILE < FILES
  GRID_FILE: lines "x y" of 0-based (drp) pixel coordinates.
  stdin:     lines "path hdu_index" (0-based HDU index as astropy counts them).
Output, per file and in order: one line "ra dec" (degrees, %.17g) per grid point, from
astropy.wcs.WCS(header).all_pix2world(x, y, 0) (origin 0 = drp's 0-based convention; includes
TPV/SIP distortions).
"""
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

grid = np.loadtxt(sys.argv[1], ndmin=2)
for line in sys.stdin:
    if not line.strip():
        continue
    path, hdu = line.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        with fits.open(path) as f:
            w = WCS(f[int(hdu)].header)
    ra, dec = w.all_pix2world(grid[:, 0], grid[:, 1], 0)
    for r, d in zip(ra, dec):
        print("%.17g %.17g" % (r, d))
