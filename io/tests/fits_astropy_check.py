"""astropy's view of files written by drp (io/tests/fits_test.cpp, fits_table_test.cpp).

  exposure PATH GRID OUT   For IMAGE, MASK, VARIANCE: "sha EXTNAME <sha256 of the pixels as
                           little-endian C-order bytes>" and "dtype EXTNAME <numpy dtype>";
                           "key NAME VALUE" for a few header keywords of IMAGE; then "sky RA DEC"
                           for each 0-based array pixel "x y" in GRID from WCS(IMAGE header)
                           .all_pix2world (SIP included). Writes OUT: IMAGE tile-compressed with
                           lossless GZIP_1 and MASK with RICE_1, for drp to read back.
  table PATH OUT           "col NAME|KIND|UNIT|TTYPE comment" per column, "rows N", "meta KEY
                           VALUE"; then writes what astropy read to OUT with Table.write.
"""
import hashlib
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

warnings.simplefilter("ignore")


def exposure(path, grid_path, out):
    grid = np.loadtxt(grid_path, ndmin=2)
    with fits.open(path) as f:
        for name in ("IMAGE", "MASK", "VARIANCE"):
            data = f[name].data
            le = data.astype(data.dtype.newbyteorder("<"))
            print("sha", name, hashlib.sha256(np.ascontiguousarray(le).tobytes()).hexdigest())
            print("dtype", name, data.dtype.kind + str(data.dtype.itemsize))
        h = f["IMAGE"].header
        for key in ("EXTNAME", "BAND", "VISIT", "NJYSCALE", "LTV1", "LTV2", "CTYPE1"):
            print("key", key, h.get(key))
        for key in f["MASK"].header:
            if key.startswith("MP_"):
                print("plane", key, f["MASK"].header[key])
        w = WCS(h)
        ra, dec = w.all_pix2world(grid[:, 0], grid[:, 1], 0)
        for r, d in zip(ra, dec):
            print("sky %.17g %.17g" % (r, d))
        print("key LONGVALUE", f[0].header.get("CONFIG_HASH_LONG_NAME"))
        print("key QUOTED", f[0].header.get("OBSERVER"))
        for name in ("IMAGE", "MASK"):  # astropy copies them stale into the new HDUs
            for key in ("CHECKSUM", "DATASUM"):
                f[name].header.remove(key, ignore_missing=True)
        hdus = [fits.PrimaryHDU(),
                fits.CompImageHDU(f["IMAGE"].data, f["IMAGE"].header, compression_type="GZIP_1",
                                  quantize_level=0.0, name="IMAGE"),
                fits.CompImageHDU(f["MASK"].data, f["MASK"].header, compression_type="RICE_1",
                                  name="MASK")]
        fits.HDUList(hdus).writeto(out, overwrite=True)


def table(path, out):
    t = Table.read(path, hdu=1)
    with fits.open(path) as f:
        comments = f[1].header.comments
        for i, name in enumerate(t.colnames):
            col = t[name]
            unit = "" if col.unit is None else col.unit.to_string()
            print("col %s|%s|%s|%s" % (name, col.dtype.kind + str(col.dtype.itemsize), unit,
                                        comments["TTYPE%d" % (i + 1)]))
    print("rows", len(t))
    for key in ("SURVEY", "NOBJ", "LONGNOTE"):
        print("meta", key, t.meta.get(key))
    for key in ("CHECKSUM", "DATASUM"):  # astropy would copy ours, stale, into its file
        t.meta.pop(key, None)
    t.write(out, format="fits", overwrite=True)


if __name__ == "__main__":
    if sys.argv[1] == "exposure":
        exposure(*sys.argv[2:5])
    elif sys.argv[1] == "table":
        table(*sys.argv[2:4])
    else:
        sys.exit("unknown command " + sys.argv[1])
