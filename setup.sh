#!/usr/bin/env bash
# Set up this project on a fresh Debian machine (or re-run it: it only installs what is missing).
#
#   bash setup.sh          the app and the test runner: requirements.txt and the Debian packages of packages.txt
#   bash setup.sh --dev    also the browser tests: requirements-dev.txt (Playwright) and the Debian packages below
#
# To add a Debian package: put it in packages.txt if the app needs it (a Hugging Face Space
# installs that file too), or in DEV_PACKAGES if only the tests do. If the package installs a
# command under another name, add it to command_of so the check is quick; otherwise dpkg is asked.
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore   # quiet pip, also as root
PYTHON=${PYTHON:-python}

# Debian packages the tests need beyond packages.txt: bubblewrap for the sandbox tests, headless
# Chromium for the browser tests (Playwright drives it; it cannot download browsers here).
DEV_PACKAGES=(bubblewrap chromium)

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use --dev or nothing)" >&2; exit 2 ;;
  esac
done

step() { echo "setup: $*"; }

# The command a package installs, for a quick "is it there?" check ("" = ask dpkg).
command_of() {
  case "$1" in
    bubblewrap) echo bwrap ;;
    chromium) echo chromium ;;
    *) echo "" ;;
  esac
}

installed() {
  local cmd
  cmd=$(command_of "$1")
  if [[ -n "$cmd" ]]; then
    command -v "$cmd" >/dev/null 2>&1
  else
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
  fi
}

# The Debian packages wanted: packages.txt (blank lines and # comments skipped), plus the tests'.
packages=()
if [[ -f packages.txt ]]; then
  while read -r line; do
    line=${line%%#*}
    for pkg in $line; do packages+=("$pkg"); done
  done < packages.txt
fi
if (( dev )); then packages+=("${DEV_PACKAGES[@]}"); fi

wanted=() missing=()
declare -A seen=()
for pkg in "${packages[@]}"; do
  [[ -n "${seen[$pkg]:-}" ]] && continue
  seen[$pkg]=1
  wanted+=("$pkg")
  installed "$pkg" || missing+=("$pkg")
done

if (( ${#missing[@]} == 0 )); then
  step "Debian packages: ${wanted[*]:-none} already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: no apt-get here (not Debian?); install ${missing[*]} yourself, then run this again" >&2
  exit 1
else
  if (( EUID == 0 )); then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    echo "setup.sh: ${missing[*]} missing, and installing needs root (run as root, or install sudo)" >&2
    exit 1
  fi
  step "Debian packages: installing ${missing[*]} (apt-get)"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if (( dev )); then
  # requirements-dev.txt starts with -r requirements.txt (the app's packages, pytest), then Playwright.
  step "Python packages: requirements-dev.txt (the app's requirements.txt with pytest, and Playwright)"
  "$PYTHON" -m pip install -q -r requirements-dev.txt
else
  step "Python packages: requirements.txt"
  "$PYTHON" -m pip install -q -r requirements.txt
fi

# What was asked for must now be there: fail here, not later in a test run.
check() { command -v "$1" >/dev/null 2>&1 || { echo "setup.sh: $2 is missing after set-up" >&2; exit 1; }; }
check bwrap "bubblewrap (bwrap, the sandbox that runs answer code)"
"$PYTHON" -c "import pytest, pytest_timeout" 2>/dev/null \
  || { echo "setup.sh: pytest or pytest-timeout is missing after set-up" >&2; exit 1; }
if (( dev )); then
  check chromium "chromium (the browser tests)"
  "$PYTHON" -c "import playwright" 2>/dev/null \
    || { echo "setup.sh: playwright is missing after set-up" >&2; exit 1; }
fi

step "done"
