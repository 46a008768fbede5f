#!/usr/bin/env bash
# Installs a CPU build of PyTorch for python3 when it is missing, so that the PyTorch checkpoint test
# (test/models-torch) and the PyTorch peer of `npm run bench` run. Idempotent; never fails the caller:
# where pip cannot get torch (no index, no python3) it says so, and those tests skip saying why.
# Plain `pip install torch` picks a CUDA build whose dependencies the mirror may not serve, hence the
# explicit +cpu version. Set ASYNDGAN_SKIP_TORCH_SETUP=1 to skip.
set -uo pipefail

TORCH_SPEC="${ASYNDGAN_TORCH_SPEC:-torch==2.13.0+cpu}"
if [ "${ASYNDGAN_SKIP_TORCH_SETUP:-0}" = "1" ]; then exit 0; fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "asyndgan setup: no python3; the PyTorch tests will skip" >&2; exit 0
fi
if python3 -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "asyndgan setup: PyTorch OK ($(python3 -c 'import torch; print(torch.__version__)'))"; exit 0
fi
echo "asyndgan setup: installing ${TORCH_SPEC} and numpy for python3 (CPU build, about a minute)"
pip_install() { python3 -m pip install --quiet --disable-pip-version-check --no-input "$@" "${TORCH_SPEC}" numpy; }
# A Debian-managed python3 refuses pip installs (PEP 668) unless told otherwise.
if pip_install >/tmp/asyndgan-torch-setup.log 2>&1 || pip_install --break-system-packages >>/tmp/asyndgan-torch-setup.log 2>&1; then
  echo "asyndgan setup: PyTorch OK ($(python3 -c 'import torch; print(torch.__version__)'))"
else
  echo "asyndgan setup: WARNING: pip could not install ${TORCH_SPEC} ($(grep -m1 -iE 'error' /tmp/asyndgan-torch-setup.log || echo 'see /tmp/asyndgan-torch-setup.log')); the PyTorch tests will skip" >&2
fi
exit 0
