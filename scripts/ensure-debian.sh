#!/usr/bin/env bash
# Debian packages the tests need, installed with apt-get when missing (as root or through
# sudo, noninteractively): chromium for the browser tests, tshark (Wireshark's dissectors,
# with dumpcap) for the NVMe/TCP interoperability test.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v tshark >/dev/null 2>&1 && command -v dumpcap >/dev/null 2>&1; } || need+=(tshark)
if [ ${#need[@]} = 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "${need[*]} missing and this user cannot install them: apt-get install ${need[*]} (as root)" >&2
    exit 1
  fi
fi
case " ${need[*]} " in *" tshark "*)
  # wireshark-common asks whether non-root users may capture; answer no, without a prompt.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | $sudo debconf-set-selections
esac
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
command -v chromium tshark dumpcap
