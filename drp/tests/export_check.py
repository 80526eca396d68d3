"""Round trip check of `drp export`: astropy reads the FITS Object table with the same values,
units and descriptions as h5py reads from release/object.h5, and the flag bits are named.

Usage: export_check.py RELEASE.h5 EXPORT.fits [--primary-only]
Exit 0 when every check passes; prints what differs otherwise.
"""
import sys

import h5py
import numpy as np
from astropy.io import fits
from astropy.table import Table

h5path, fitspath = sys.argv[1], sys.argv[2]
primary_only = "--primary-only" in sys.argv[3:]
problems = []

with h5py.File(h5path, "r") as f:
    g = f["object"]
    cols = {k: g[k][:] for k in g}
    units = {k: g[k].attrs.get("unit", b"") for k in g}
    descr = {k: g[k].attrs.get("description", b"") for k in g}
    bands = f.attrs.get("DRP_BANDS", "")

def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)

keep = cols["is_primary"].astype(bool) if primary_only else np.ones(len(cols["ra"]), bool)

with fits.open(fitspath, checksum=True) as hdul:  # verifies CHECKSUM/DATASUM when present
    hdr = hdul["OBJECT"].header
    t = Table(hdul["OBJECT"].data)
    names = [hdr[f"TTYPE{i}"] for i in range(1, hdr["TFIELDS"] + 1)]
    if set(names) != set(cols):
        problems.append(f"columns differ: fits-only {set(names) - set(cols)}, "
                        f"hdf5-only {set(cols) - set(names)}")
    for i, name in enumerate(names, start=1):
        if name not in cols:
            continue
        a = cols[name][keep]
        b = np.asarray(t[name])
        if a.dtype.kind == "b" or b.dtype.kind == "b":
            same = np.array_equal(a.astype(bool), b.astype(bool))
        elif a.dtype.kind == "f":
            same = a.shape == b.shape and np.array_equal(a, b.astype(a.dtype), equal_nan=True) \
                and b.dtype.kind == "f" and b.dtype.itemsize == a.dtype.itemsize
        else:
            same = np.array_equal(a, b) and b.dtype.kind == a.dtype.kind \
                and b.dtype.itemsize == a.dtype.itemsize
        if not same:
            problems.append(f"column {name}: values or type differ ({a.dtype} vs {b.dtype})")
        unit = text(units[name])
        if unit and hdr.get(f"TUNIT{i}", "") != unit:
            problems.append(f"column {name}: TUNIT{i} = {hdr.get(f'TUNIT{i}')!r}, want {unit!r}")
        d = text(descr[name])
        doc = hdr.get(f"TDOC{i}", hdr.comments[f"TTYPE{i}"])
        if d and doc.strip() != d.strip():
            problems.append(f"column {name}: description {doc!r}, want {d!r}")
    nrows = int(keep.sum())
    if len(t) != nrows:
        problems.append(f"{len(t)} rows, want {nrows}")
    if hdr.get("BANDS") != text(bands):
        problems.append(f"BANDS = {hdr.get('BANDS')!r}, want {text(bands)!r}")
    flagbits = {int(k[5:]): v for k, v in hdr.items() if k.startswith("FLAGB")}
    for bit, name in [(0, "no_epochs"), (4, "blended"), (6, "deblended_parent")]:
        if flagbits.get(bit) != name:
            problems.append(f"FLAGB{bit} = {flagbits.get(bit)!r}, want {name!r}")
    prim = hdul[0].header
    for key in ("SRCSHA", "EXPORTER"):
        if key not in prim:
            problems.append(f"primary header has no {key}")
    print(f"{len(t)} rows, {len(names)} columns, flag bits {sorted(flagbits)}; "
          f"ra unit {hdr.get('TUNIT' + str(names.index('ra') + 1))}")

for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
