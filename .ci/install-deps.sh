#!/usr/bin/env bash
# Installs depthmatte's build and test dependencies from Debian 12 packages.
# Usage: bash .ci/install-deps.sh   (as root, or with sudo available)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config git \
    libopenmpi-dev openmpi-bin \
    libhdf5-openmpi-dev hdf5-tools \
    libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev ffmpeg \
    libyaml-dev libopenblas-dev libcjson-dev libssl-dev libopenexr-dev libcsv-dev \
    python3 python3-numpy python3-h5py
# Hardening passes of .ci/run: clang + libFuzzer/sanitizer runtimes + clang's OpenMP for the
# fuzz build (tests/fuzz), and a real Slurm + munge for the slurm tests (tests/slurm; the test
# starts its own private daemons, nothing is configured system-wide).
$SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev libomp-14-dev \
    slurm-wlm munge
