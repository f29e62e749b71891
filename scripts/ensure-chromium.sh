#!/bin/sh
# Run by `npm test` before ava: the dashboard's end-to-end test (test/dashboard.test.ts) drives Debian's
# chromium package with playwright-core (no browser download). Installs it with apt-get when
# /usr/bin/chromium is missing and this is root; otherwise says how, and the dashboard test fails
# with the same advice (the other tests run either way).
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
advice="install Debian's chromium package: apt-get update && apt-get install -y chromium (as root)"
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: $CHROMIUM is missing and this is not root: $advice; test/dashboard.test.ts will fail until then" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and there is no apt-get here: $advice; test/dashboard.test.ts will fail until then" >&2
  exit 0
fi
echo "ensure-chromium: $CHROMIUM is missing: installing Debian's chromium package (apt-get update; apt-get install -y chromium)" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/tmp/ensure-chromium.log 2>&1
if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")" >&2
else
  echo "ensure-chromium: apt-get could not install chromium (no network to the Debian mirrors?), see /tmp/ensure-chromium.log: $advice; test/dashboard.test.ts will fail until then" >&2
fi
exit 0
