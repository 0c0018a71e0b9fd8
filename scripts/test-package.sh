#!/bin/sh
# make test-package: the Debian package checked the way an operator meets it. lintian on the .deb,
# then, in a fresh Debian 12 root made by mmdebstrap (its hooks mount /proc, /sys and /dev and the
# checks run in it through chroot; systemd is not PID 1 there, and `systemctl --root` and
# deb-systemd-helper work offline): install, reinstall, upgrade from a previous version with an
# edited conffile, remove, purge, and a start after purge and re-provisioning
# (scripts/package-root-checks.sh). The previous version is this package repacked with a lower
# version and another conffile, so the package is built once.
set -eu
DIST=${1:-dist}
ARCH=$(dpkg --print-architecture)
DEB=$(ls "$DIST"/posminid_*_"$ARCH".deb | head -1)
VERSION=$(dpkg-deb -f "$DEB" Version)
WORK=$(mktemp -d /tmp/posminid-package-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
start=$(date +%s)

echo "== the package: $DEB"
dpkg-deb -f "$DEB" Package Version Architecture Depends Installed-Size
echo "   installed size: $(dpkg-deb -f "$DEB" Installed-Size) KiB"
dpkg-deb -x "$DEB" "$WORK/contents"
echo "   posminid binary in it: $(stat -c %s "$WORK/contents/usr/sbin/posminid") bytes ($(file -b "$WORK/contents/usr/sbin/posminid" | sed 's/,.*BuildID[^,]*//'))"
echo "   posminictl binary in it: $(stat -c %s "$WORK/contents/usr/bin/posminictl") bytes"
if file -b "$WORK/contents/usr/sbin/posminid" | grep -q "not stripped"; then
    echo "FAIL: /usr/sbin/posminid is not stripped" >&2
    exit 1
fi

# The maintainer scripts debhelper wrote: an upgrade try-restarts the service (the new binary
# runs) and does not restart the socket (the running daemon keeps listening on it).
dpkg-deb -e "$DEB" "$WORK/control"
grep -q "deb-systemd-invoke try-restart 'posminid.service'" "$WORK/control/postinst" \
    || { echo "FAIL: postinst does not try-restart posminid.service on upgrade" >&2; exit 1; }
if grep -E "restart.*posminid.socket|_dh_action=restart" "$WORK/control/postinst"; then
    echo "FAIL: postinst restarts posminid.socket on upgrade" >&2; exit 1
fi
if grep -q "posminid.socket" "$WORK/control/preinst" 2>/dev/null; then
    echo "FAIL: preinst stops posminid.socket before an upgrade" >&2; exit 1
fi
echo "   maintainer scripts: an upgrade try-restarts posminid.service and leaves posminid.socket running"

echo
echo "== lintian (errors and warnings fail; overrides in debian/posminid.lintian-overrides)"
lintian --fail-on error,warning --display-info "$DEB" 2>&1 | grep -v -e spelling-error-in-binary -e "running with root privileges" || true
lintian --fail-on error,warning "$DEB" >/dev/null 2>&1 || { lintian "$DEB"; echo "FAIL: lintian" >&2; exit 1; }
echo "   lintian: no errors, no warnings; overridden, with the reason (debian/posminid.lintian-overrides):"
# (--show-overrides makes lintian exit 2 whatever --fail-on says: the overrides are printed apart.)
lintian --show-overrides "$DEB" 2>/dev/null | grep -e "^O:" -e "^N:" | sed 's/^/   /' || true
echo "   (info tags left: Swift's code calls no fortifiable libc functions; its runtime's strings"
echo "   give spelling-error-in-binary; systemd is the only init the package supports)"

echo
echo "== the previous version: $VERSION repacked as 0.5.99 with another conffile"
dpkg-deb -R "$DEB" "$WORK/previous"
sed -i "s/^Version: .*/Version: 0.5.99/" "$WORK/previous/DEBIAN/control"
printf '\n# (0.5.99 shipped this line; 0.6.0 does not)\n' >> "$WORK/previous/etc/posminid/posminid.conf"
(cd "$WORK/previous" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum > DEBIAN/md5sums)
dpkg-deb --root-owner-group -b "$WORK/previous" "$WORK/posminid_0.5.99_$ARCH.deb" >/dev/null
mkdir -p "$WORK/in"
cp "$DEB" "$WORK/in/posminid_${VERSION}_$ARCH.deb"
cp "$WORK/posminid_0.5.99_$ARCH.deb" "$WORK/in/"
cp "$(dirname "$0")/package-root-checks.sh" "$WORK/in/checks.sh"

echo
echo "== a fresh Debian 12 root (mmdebstrap, variant apt, with systemd for systemctl and systemd-analyze)"
mmdebstrap --variant=apt --include=systemd --mode=root \
    --customize-hook='mkdir -p "$1/root/package-test"' \
    --customize-hook="copy-in $WORK/in/checks.sh $WORK/in/posminid_${VERSION}_$ARCH.deb $WORK/in/posminid_0.5.99_$ARCH.deb /root/package-test" \
    --customize-hook="chroot \"\$1\" sh /root/package-test/checks.sh $VERSION $ARCH" \
    bookworm "$WORK/root"

echo
echo "== make test-package: passed in $(( $(date +%s) - start )) s (after the package build)"
