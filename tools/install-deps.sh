#!/bin/sh
# Installs the Debian packages listed in tools/deps.txt that are not installed yet.
# Runs apt-get as root, or through sudo; does nothing when everything is there.
set -eu
list=${1:-$(dirname "$0")/deps.txt}
missing=""
for p in $(grep -v '^#' "$list"); do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
