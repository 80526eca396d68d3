#!/usr/bin/env bash
# Installs every Debian package drp needs to build, test, benchmark and run its demo.
# Idempotent: packages already present are skipped; safe to run again as root.
# Usage: scripts/setup.sh            (as root on Debian 12)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config git
  # libraries (parallel HDF5 only: never libhdf5-dev beside it, see docs/building.md)
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libcfitsio-dev wcslib-dev libeigen3-dev
  libboost-program-options-dev libgtest-dev googletest
  libssl-dev  # OpenSSL libcrypto: SHA-256 of committed outputs in jobs/
  # reference tools that tests and benchmarks compare against
  source-extractor swarp scamp psfex
  python3 python3-astropy python3-h5py python3-numpy
  # real Slurm on localhost for the Slurm tests
  slurm-wlm munge
  # headless browser for the QA report test
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages (${missing[*]}) and not root; run as root" >&2
  exit 1
fi

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
