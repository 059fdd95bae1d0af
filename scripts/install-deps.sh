#!/usr/bin/env bash
# Installs the Debian packages that diffuse's build, tests and demo need, and only the missing ones.
# Idempotent: a machine that has them all is left untouched (no apt-get update, no root needed).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libcli11-dev nlohmann-json3-dev
  libcairo2-dev libgif-dev fonts-dejavu-core
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-dev python3-pybind11 pybind11-dev python3-numpy python3-pytest
  python3-matplotlib  # the Python suite runs examples/tutorial.py, which draws its figures
)
# Extra packages for `make fuzz` (clang's libFuzzer runtime); installed only when asked.
if [[ "${1:-}" == "--fuzz" ]]; then PACKAGES+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root or with passwordless sudo, or install them by hand:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
