#!/usr/bin/env bash
# System packages for the browser app (`hrpqct serve`) and its end-to-end test, from Debian:
#   chromium, chromium-driver  the headless browser the test drives (Playwright uses /usr/bin/chromium)
#   libosmesa6, libgl1-mesa-dri, libegl-mesa0
#                              Mesa's software OpenGL (llvmpipe): VTK renders the slice and 3D
#                              views off screen with it on a machine without a GPU or display
# Non-fatal by design (called by `make test`): installs what is missing when run as root on a
# Debian/Ubuntu machine, otherwise prints the command to run; the browser test then skips and
# says why. Idempotent: does nothing when everything is present.
set -uo pipefail

have_osmesa() { ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so'; }
have_dri() { compgen -G '/usr/lib/*/dri/swrast_dri.so' >/dev/null || [[ -e /usr/lib/dri/swrast_dri.so ]]; }
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
have_osmesa || missing+=(libosmesa6)
have_dri || missing+=(libgl1-mesa-dri libegl-mesa0)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: installing ${missing[*]} (Debian packages for the browser app's test)"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "setup-browser: done"
  else
    echo "setup-browser: apt-get failed; the browser test will be skipped" >&2
  fi
else
  echo "setup-browser: missing ${missing[*]}; the browser test will be skipped. To run it:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
fi
exit 0
