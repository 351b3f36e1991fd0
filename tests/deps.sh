#!/bin/sh
# Installs the Debian packages a build ("build"), a test run ("test") or
# `make fuzz` ("fuzz") needs, when they are missing. As root it runs apt-get
# itself; otherwise it prints the exact apt-get line and fails.
set -eu
what=${1:-build}

# package:probe pairs -- the probe is a file or command the package provides.
build_pkgs="gcc:gcc make:make libyaml-dev:/usr/include/yaml.h"
test_pkgs="libcmocka-dev:/usr/include/cmocka.h dante-server:danted microsocks:microsocks
vsftpd:vsftpd lftp:lftp
curl:curl wget:wget python3:python3 socat:socat tcpdump:tcpdump iproute2:ip
dnsutils:dig openssh-server:/usr/sbin/sshd openssh-client:ssh git:git
nodejs:node binutils:nm man-db:man proxychains4:proxychains4 busybox-static:/bin/busybox
procps:pkill psmisc:fuser tinyproxy:tinyproxy strace:strace
golang-go:go
nginx-light:nginx g++:g++ pkg-config:pkg-config default-jdk-headless:javac
libboost-dev:/usr/include/boost/asio.hpp libglib2.0-dev:/usr/include/glib-2.0/gio/gio.h
libevent-dev:/usr/include/event2/bufferevent.h aria2:aria2c
python3-dnspython:/usr/lib/python3/dist-packages/dns/resolver.py tor:tor"
# clang alone (--no-install-recommends) lacks compiler-rt, which holds the
# libFuzzer and sanitizer runtimes; libclang-rt-dev pulls the default one.
fuzz_pkgs="clang:clang libclang-rt-dev:/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a"

case $what in
build) pkgs=$build_pkgs ;;
fuzz) pkgs="$build_pkgs $fuzz_pkgs" ;;
*) pkgs="$build_pkgs $test_pkgs" ;;
esac

missing=""
for pair in $pkgs; do
	pkg=${pair%%:*}
	probe=${pair#*:}
	case $probe in
	/*) # a glob: any match will do
	    for f in $probe; do [ -e "$f" ] && continue 2; done ;;
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
