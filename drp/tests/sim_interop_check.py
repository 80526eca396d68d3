"""Interoperability check of a simulated exposure (issue #3): astropy opens it with a valid WCS,
and Debian's source-extractor, run on its IMAGE plane, finds the bright truth stars.

Usage: sim_interop_check.py REPO VISIT DETECTOR WORKDIR
Prints "key value" lines; exits non-zero (with a message) when a check fails.
"""
import os
import subprocess
import sys

import h5py
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

repo, visit, det, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
path = os.path.join(repo, "input", f"visit-{visit}", f"det-{det}.fits")


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


# ---- astropy: the file, its planes and its header WCS
with fits.open(path, checksum=True) as hdul:
    names = [h.name for h in hdul]
    if names[1:4] != ["IMAGE", "MASK", "VARIANCE"]:
        fail(f"planes {names}")
    image = hdul["IMAGE"].data.astype(np.float64)
    mh = hdul["MASK"].header
    sat_y, sat_x = np.nonzero(hdul["MASK"].data & (1 << mh["MP_SAT"]))
    # Defects SExtractor knows nothing about (it reads only the IMAGE plane): bad columns,
    # cosmic rays, satellite trails.
    defect = (hdul["MASK"].data & ((1 << mh["MP_BAD"]) | (1 << mh["MP_CR"]) |
                                   (1 << mh["MP_STREAK"]))) != 0
    variance = hdul["VARIANCE"].data.astype(np.float64)
    header_wcs = WCS(hdul["IMAGE"].header)
    band = hdul[0].header["BAND"].strip()
    njy_per_count = hdul[0].header["NJYSCALE"]
    saturation = hdul[0].header["SATURATE"]
ny, nx = image.shape
if header_wcs.naxis != 2 or not header_wcs.has_celestial:
    fail("header WCS is not celestial")
corners = header_wcs.all_pix2world([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1]], 0)
if not np.all(np.isfinite(corners)):
    fail("header WCS gives non-finite corners")

# ---- truth: true WCS of this detector, the stars on it
with h5py.File(os.path.join(repo, "truth", "truth.h5"), "r") as f:
    d = f["detectors"]
    rows = np.nonzero((d["visit"][:] == visit) & (d["detector"][:] == det))[0]
    if len(rows) != 1:
        fail(f"no truth row for visit {visit} detector {det}")
    r = rows[0]
    cards = d["wcs_header"][r]
    cards = cards.decode() if isinstance(cards, bytes) else cards
    njy_per_electron = d["njy_per_electron"][r]
    sky = d["sky_level"][r]
    fwhm = d["psf_fwhm"][r]
    o = f["objects"]
    ra, dec = o["ra"][:], o["dec"][:]
    is_star = o["is_star"][:].astype(bool)
    flux = o[f"{band}_flux"][:]
true_wcs = WCS(fits.Header.fromstring(cards))
x, y = true_wcs.all_world2pix(ra, dec, 0)
# The header WCS is off by the simulated pointing error (arcseconds): compare at the centre.
c_true = true_wcs.all_pix2world([[nx / 2, ny / 2]], 0)[0]
c_head = header_wcs.all_pix2world([[nx / 2, ny / 2]], 0)[0]
offset = np.hypot((c_true[0] - c_head[0]) * np.cos(np.radians(c_true[1])),
                  c_true[1] - c_head[1]) * 3600
print("header_offset_arcsec", offset)
if not offset < 60:
    fail(f"header WCS {offset} arcsec from the truth")

# Noise: the variance plane against the scatter of sky pixels (sigma-clipped, unmasked).
electrons = flux / njy_per_electron
sigma_px = fwhm / 2.3548
npix = 4 * np.pi * sigma_px**2  # effective area of optimal PSF photometry
snr = electrons / np.sqrt(electrons + npix * sky)
peak_counts = electrons / (2 * np.pi * sigma_px**2) * njy_per_electron / njy_per_count
edge = 10
bright = (is_star & (snr > 50) & (peak_counts < 0.5 * saturation) & (x > edge) &
          (x < nx - 1 - edge) & (y > edge) & (y < ny - 1 - edge))
# Isolated: no other object brighter than 5% of the star within 3 FWHM, no masked defect within
# 2 FWHM, and no saturated star within 40 px (SExtractor merges close pairs and stars in a saturated star's wings and bleed
# trail into one object; deblending is checked elsewhere).
for i in np.nonzero(bright)[0]:
    dist = np.hypot(x - x[i], y - y[i])
    near = dist < 3 * fwhm
    near[i] = False
    xi, yi, r = int(round(x[i])), int(round(y[i])), int(np.ceil(2 * fwhm))
    if (np.any(near & (flux > 0.05 * flux[i])) or
            np.any(np.hypot(sat_x - x[i], sat_y - y[i]) < 40) or
            defect[max(0, yi - r):yi + r + 1, max(0, xi - r):xi + r + 1].any()):
        bright[i] = False
print("bright_isolated_truth_stars", int(bright.sum()))
if bright.sum() < 5:
    fail("fewer than 5 bright truth stars on the detector: pick another")

# ---- source-extractor on the IMAGE plane (its internal defaults, no filter, 5 sigma)
os.makedirs(work, exist_ok=True)
param = os.path.join(work, "sx.param")
cat = os.path.join(work, "sx.cat")
with open(param, "w") as p:
    p.write("X_IMAGE\nY_IMAGE\nFLUX_AUTO\nFLAGS\n")
cmd = ["source-extractor", f"{path}[1]", "-PARAMETERS_NAME", param, "-FILTER", "N",
       "-CATALOG_TYPE", "ASCII", "-CATALOG_NAME", cat, "-DETECT_THRESH", "5",
       "-VERBOSE_TYPE", "QUIET", "-CHECKIMAGE_TYPE", "NONE"]
subprocess.run(cmd, check=True, cwd=work)
sx = np.atleast_2d(np.loadtxt(cat))
if sx.size == 0:
    fail("source-extractor found nothing")
sxx, sxy = sx[:, 0] - 1.0, sx[:, 1] - 1.0  # FITS 1-based -> drp 0-based pixel centres
print("sextractor_detections", len(sxx))
found, dist = 0, []
for bx, by in zip(x[bright], y[bright]):
    dd = np.hypot(sxx - bx, sxy - by)
    k = np.argmin(dd)
    if dd[k] < 1.5:
        found += 1
        dist.append(dd[k])
misses = [(bx, by) for bx, by in zip(x[bright], y[bright]) if np.min(np.hypot(sxx - bx, sxy - by)) >= 1.5]
for bx, by in misses:
    near = np.hypot(x - bx, y - by)
    nb = np.argsort(near)[1]
    print("miss", bx, by, "nearest_sx", np.min(np.hypot(sxx - bx, sxy - by)), "nearest_truth", near[nb], flux[nb])
frac = found / bright.sum()
print("bright_found_fraction", frac)
print("median_offset_px", float(np.median(dist)) if dist else -1)
if frac < 0.95:
    fail(f"source-extractor found only {found} of {bright.sum()} bright truth stars")
print("OK")
