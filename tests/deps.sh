#!/bin/sh
# Installs the Debian packages a build ("build") or a test run ("test")
# needs, when they are missing. As root it runs apt-get itself; otherwise it
# prints the exact apt-get line and fails.
set -eu
what=${1:-build}

# package:probe pairs -- the probe is a file or command the package provides.
build_pkgs="gcc:gcc make:make libyaml-dev:/usr/include/yaml.h"
test_pkgs="libcmocka-dev:/usr/include/cmocka.h dante-server:danted microsocks:microsocks
curl:curl wget:wget python3:python3 socat:socat tcpdump:tcpdump iproute2:ip
dnsutils:dig openssh-server:/usr/sbin/sshd openssh-client:ssh git:git
nodejs:node binutils:nm man-db:man proxychains4:proxychains4 busybox-static:/bin/busybox
procps:pkill psmisc:fuser tinyproxy:tinyproxy strace:strace
liburing2:/usr/share/doc/liburing2"

pkgs=$build_pkgs
[ "$what" = build ] || pkgs="$build_pkgs $test_pkgs"

missing=""
for pair in $pkgs; do
	pkg=${pair%%:*}
	probe=${pair#*:}
	case $probe in
	/*) [ -e "$probe" ] && continue ;;
	*) command -v "$probe" >/dev/null 2>&1 && continue
	   [ -x "/usr/sbin/$probe" ] && continue ;;
	esac
	missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "socksify: missing Debian packages:$missing" >&2
	echo "socksify: as root run:  apt-get update && $line" >&2
	exit 1
fi
echo "socksify: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
