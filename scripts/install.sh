#!/usr/bin/env bash
# Install lipforge and its whole stack into ./.venv (idempotent; a second run only checks).
#   torch is installed first ($TORCH_SPEC), then everything else with constraints.txt, so pip keeps that build.
#   Plain PyPI's torch==2.13.0 is the multi-GB CUDA build; for the CPU build or a given CUDA build set TORCH_SPEC
#   to it with its --index-url (see README "Set up").
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))'; then
  echo "error: lipforge needs Python 3.10-3.12; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11." >&2
  exit 2
fi
# OpenCV (pulled in by face-alignment) needs libGL; bare Debian/Ubuntu images lack it.
if ! ldconfig -p 2>/dev/null | grep -q 'libGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libgl1 libglib2.0-0 >/dev/null
  else
    echo "warning: libGL.so.1 not found; install your distribution's libgl1 package if 'import cv2' fails" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# TORCH_SPEC may carry pip options (--index-url ...): split it into words on purpose.
# shellcheck disable=SC2086
.venv/bin/python -m pip install --quiet --disable-pip-version-check $TORCH_SPEC
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
.venv/bin/python -c 'import torch, ray, dvc, prefect, librosa, av, cv2, dlib, pocketsphinx; print("lipforge installed: torch", torch.__version__, "ray", ray.__version__)'
