#!/bin/bash
# `make install PREFIX=... DESTDIR=...` puts launcher, library, example config
# and man pages where INTERFACE.md says, and the installed launcher finds the
# installed library (compiled-in PREFIX) and the installed config (search
# order) on its own.
set -u
cd "$SFY_TOP"
tmp=$(mktemp -d /tmp/sfy-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { if "${@:2}"; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi; }

prefix=$tmp/usr
if ! make -s install SANITIZE= BUILD="$tmp/build" PREFIX="$prefix" >"$tmp/make.log" 2>&1; then
	echo "FAIL: make install"; tail -20 "$tmp/make.log"; exit 1
fi
ok "launcher installed" test -x "$prefix/bin/socksify"
ok "library installed" test -f "$prefix/lib/socksify/libsocksify.so"
ok "example config installed" test -f "$prefix/etc/socksify.yaml"
ok "socksify(1) installed and renders" sh -c "man -l '$prefix/share/man/man1/socksify.1' 2>/dev/null | grep -q 'SYNOPSIS\|Synopsis'"
ok "socksify.yaml(5) installed and renders" sh -c "man -l '$prefix/share/man/man5/socksify.yaml.5' 2>/dev/null | grep -qi 'proxies'"
# Away from the build tree, with no user config: the launcher uses the
# installed library and the installed example config.
mkdir -p "$tmp/empty"
out=$(cd "$tmp/empty" && env -u SOCKSIFY_CONFIG -u SOCKSIFY_PROXY HOME="$tmp/empty" \
	XDG_CONFIG_HOME="$tmp/empty" "$prefix/bin/socksify" sh -c 'echo "$LD_PRELOAD|$SOCKSIFY_CONFIG"' 2>&1)
ok "installed launcher preloads the installed library" \
	test "${out%%|*}" = "$prefix/lib/socksify/libsocksify.so"
ok "installed launcher finds \$PREFIX/etc/socksify.yaml" test "${out#*|}" = "$prefix/etc/socksify.yaml"
# PREFIX=/usr puts the config in /etc (DESTDIR keeps it in the temp tree).
make -s install SANITIZE= BUILD="$tmp/build" PREFIX=/usr DESTDIR="$tmp/dest" >"$tmp/make2.log" 2>&1
ok "PREFIX=/usr installs /etc/socksify.yaml under DESTDIR" test -f "$tmp/dest/etc/socksify.yaml"
ok "PREFIX=/usr installs the library under DESTDIR/usr/lib/socksify" \
	test -f "$tmp/dest/usr/lib/socksify/libsocksify.so"
ok "changing PREFIX rebuilt the launcher (LIBDIR compiled in)" \
	grep -q /usr/lib/socksify "$tmp/dest/usr/bin/socksify"
exit $fail
