#!/usr/bin/env bash
# setup-browser.sh: make a headless Chromium available for the report render test
# (Testing/Python/test_classify_report.py). Installs the Debian package `chromium` with apt-get
# when it is missing and this runs as root; otherwise (or when apt-get fails) it only says so
# and the test skips with a reason. Never fails the caller.
set -u
for exe in chromium chromium-browser google-chrome; do
  if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no chromium and not root with apt-get; the browser render test will skip" >&2
  exit 0
fi
echo "setup-browser: installing the Debian package chromium (headless report render test)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q chromium >/dev/null 2>&1; then
  apt-get update -q >/dev/null 2>&1 || true
  apt-get install -y -q chromium >/dev/null 2>&1 || \
    echo "setup-browser: apt-get install chromium failed; the browser render test will skip" >&2
fi
exit 0
