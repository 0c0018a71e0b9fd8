#!/bin/sh
# Runs inside the fresh Debian root that scripts/test-package.sh makes (as root, through chroot):
# the operator's life with the package. Arguments: the version under test and the architecture.
set -eu
VERSION=$1
ARCH=$2
HERE=/root/package-test
NEW=$HERE/posminid_${VERSION}_$ARCH.deb
OLD=$HERE/posminid_0.5.99_$ARCH.deb
SCRATCH=$HERE/run
export DEBIAN_FRONTEND=noninteractive
# The published test key and test values only (ANSI X9.24-3-2017's AES DUKPT sample BDK).
TEST_BDK=FEDCBA9876543210F1F1F1F1F1F1F1F1
TEST_IKID=123456789012345A
# After a purge the counter is gone: a new key gets a new key ID (the same one would repeat KSNs).
TEST_IKID_AFTER_PURGE=123456789012345B

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }

# The root's files, leaving out what is not the package's to keep or remove: dpkg's and apt's
# databases, caches and logs, the user database (Debian policy lets a package's system user stay
# after purge: posminid and posmini remain in /etc/passwd, /etc/group and their shadows, and in
# the backups of these that the tools leave, /etc/passwd- and the like), the kernel's file
# systems that the hooks mount (/proc, /sys, /dev), /run/systemd (systemd-analyze verify, run by
# this test, leaves its state there), and this test's own folder.
snapshot() {
    find / \( -path /proc -o -path /sys -o -path /dev -o -path /run/systemd \
              -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache -o -path /var/log \
              -o -path "$HERE" \) -prune -o -print \
        | grep -v -x -E '/etc/(passwd|group|shadow|gshadow)-?' | LC_ALL=C sort
}

# Provisions an AES DUKPT key with the test BDK (given on standard input) and key ID $1.
provision() {
    posminid provision --bdk - --ikid "$1" 2>$HERE/provision-$1.log <<KEY || { cat $HERE/provision-$1.log; fail "provision $1"; }
$TEST_BDK
KEY
}

# Runs the daemon on the shipped recording (held until a client arms), arms it once like a POS
# app, and asks for the status. $1: the key options ("--test-key", or none for the provisioned key).
swipe_once() {
    rm -rf "$SCRATCH" && mkdir -p "$SCRATCH/state"
    # shellcheck disable=SC2086
    posminid $1 --replay /usr/share/posminid/sample-swipe.wav --replay-hold \
        --socket "$SCRATCH/posmini.sock" --state-directory "$2" 2>"$SCRATCH/daemon.log" &
    daemon=$!
    n=0
    until [ -S "$SCRATCH/posmini.sock" ]; do
        n=$((n + 1))
        if [ $n -gt 600 ] || ! kill -0 $daemon 2>/dev/null; then
            cat "$SCRATCH/daemon.log" >&2
            fail "the daemon did not open its socket"
        fi
        sleep 0.1
    done
    posminictl arm --json --timeout 60 --reference package-test --socket "$SCRATCH/posmini.sock" > "$SCRATCH/arm.json"
    grep -q '"class":"CARD"' "$SCRATCH/arm.json" || { cat "$SCRATCH/arm.json" "$SCRATCH/daemon.log" >&2; fail "no CARD"; }
    if grep -q '4111111111111111' "$SCRATCH/arm.json" "$SCRATCH/daemon.log"; then fail "a clear card number left the daemon"; fi
    posminictl status --socket "$SCRATCH/posmini.sock" > "$SCRATCH/status.txt"
    grep -q "replay" "$SCRATCH/status.txt" || { cat "$SCRATCH/status.txt" >&2; fail "posminictl status does not list the reader"; }
    kill -TERM $daemon
    wait $daemon || fail "the daemon did not stop cleanly on SIGTERM"
    rm -rf "$SCRATCH"
}

echo "== inside the root: $(cat /etc/debian_version), /proc $( [ -e /proc/self/status ] && echo mounted ), /sys $( [ -d /sys/class ] && echo mounted ), /dev/null $( [ -c /dev/null ] && echo present )"
apt-get update -qq
snapshot > $HERE/before.list
dpkg-query -W -f='${Package}\n' | LC_ALL=C sort > $HERE/packages-before.list

echo
echo "== apt-get install ./posminid_${VERSION}_$ARCH.deb"
depends=$(dpkg-deb -f "$NEW" Depends)
echo "   Depends: $depends"
# What apt would install for exactly those dependencies (an alternative already installed counts).
names=""
for dep in $(echo "$depends" | tr -d ' ' | tr ',' '\n' | sed 's/([^)]*)//g'); do
    chosen=""
    for alt in $(echo "$dep" | tr '|' ' '); do
        alt=${alt%%:*}
        if dpkg-query -W -f='${Status}' "$alt" 2>/dev/null | grep -q "install ok installed"; then chosen=$alt; break; fi
    done
    names="$names ${chosen:-${dep%%|*}}"
done
apt-get -s install $names | sed -n 's/^Inst \([^ ]*\) .*/\1/p' | LC_ALL=C sort > $HERE/expected-new.list
apt-get install -y -q "$NEW" > $HERE/install.log 2>&1 || { cat $HERE/install.log; fail "apt-get install"; }
dpkg-query -W -f='${Package}\n' | LC_ALL=C sort > $HERE/packages-after.list
LC_ALL=C comm -13 $HERE/packages-before.list $HERE/packages-after.list | grep -v -x posminid > $HERE/new.list || true
diff $HERE/expected-new.list $HERE/new.list || fail "the install pulled in other packages than its Depends"
ok "pulled in exactly its Depends: $(tr '\n' ' ' < $HERE/new.list)"
dpkg-query -W -f='${Status}\n' posminid | grep -q "install ok installed" || fail "posminid is not installed"

getent passwd posminid >/dev/null || fail "no posminid user"
getent group posmini >/dev/null || fail "no posmini group"
id -nG posminid | grep -qw audio || fail "posminid is not in the audio group"
ok "user posminid ($(getent passwd posminid | cut -d: -f3), groups $(id -nG posminid)), group posmini"
[ -f /lib/udev/rules.d/72-posmini.rules ] || fail "the udev rule is not installed"
ok "udev rule /lib/udev/rules.d/72-posmini.rules"
[ "$(systemctl --root=/ is-enabled posminid.socket)" = enabled ] || fail "posminid.socket is not enabled"
ok "posminid.socket: $(systemctl --root=/ is-enabled posminid.socket); posminid.service: $(systemctl --root=/ is-enabled posminid.service || true)"
systemd-analyze verify --man=no /lib/systemd/system/posminid.socket /lib/systemd/system/posminid.service \
    || fail "systemd-analyze verify"
ok "systemd-analyze verify on the installed units"
[ -f /etc/posminid/posminid.conf ] || fail "no /etc/posminid/posminid.conf"
dpkg-query -W -f='${Conffiles}\n' posminid | grep -q " /etc/posminid/posminid.conf " || fail "posminid.conf is not a conffile"
ok "conffile /etc/posminid/posminid.conf"
[ -L /var/lib/prometheus/node-exporter/posminid.prom ] || fail "the metrics link (tmpfiles) is missing"
ok "metrics link $(ls -l /var/lib/prometheus/node-exporter/posminid.prom | sed 's/.* \//\//')"

echo
echo "== the programs, with no network and no reader"
[ "$(posminid --version)" = "$VERSION" ] || fail "posminid --version says $(posminid --version)"
ok "posminid --version: $(posminid --version)"
posminid decode /usr/share/posminid/sample-swipe.wav > $HERE/decode.txt || fail "posminid decode"
grep -q "Track 1: ok" $HERE/decode.txt && grep -q "Track 2 (assumed): ok" $HERE/decode.txt || { cat $HERE/decode.txt; fail "decode did not read both tracks"; }
grep -q "4111111111111111" $HERE/decode.txt && fail "decode printed a clear card number"
ok "posminid decode /usr/share/posminid/sample-swipe.wav: both tracks, masked"
swipe_once --test-key "$SCRATCH/state"
ok "posminid --test-key --replay: a CARD for posminictl arm, posminictl status lists the reader"

echo
echo "== apt-get install --reinstall"
apt-get install -y -q --reinstall "$NEW" > $HERE/reinstall.log 2>&1 || { cat $HERE/reinstall.log; fail "reinstall"; }
ok "reinstalled $VERSION"

echo
echo "== upgrade from 0.5.99 with the conffile edited (--force-confold)"
dpkg -i "$OLD" > $HERE/downgrade.log 2>&1 || { cat $HERE/downgrade.log; fail "installing 0.5.99"; }
[ "$(dpkg-query -W -f='${Version}' posminid)" = 0.5.99 ] || fail "0.5.99 is not installed"
echo "# the operator's edit" >> /etc/posminid/posminid.conf
apt-get install -y -q -o Dpkg::Options::=--force-confold "$NEW" > $HERE/upgrade.log 2>&1 || { cat $HERE/upgrade.log; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' posminid)" = "$VERSION" ] || fail "the upgrade did not install $VERSION"
grep -q "^# the operator's edit" /etc/posminid/posminid.conf || fail "the operator's edit was lost"
[ -f /etc/posminid/posminid.conf.dpkg-dist ] || fail "no posminid.conf.dpkg-dist"
grep -q "0.5.99 shipped" /etc/posminid/posminid.conf.dpkg-dist && fail ".dpkg-dist is not the new version's file"
ok "0.5.99 -> $VERSION: the edit kept, the new file beside it as posminid.conf.dpkg-dist"

echo
echo "== a provisioned key (the published test BDK), then apt-get remove"
provision $TEST_IKID
[ -f /etc/posminid/ik ] && ls /var/lib/posminid/* >/dev/null || fail "provision wrote no key or no counter"
ok "provisioned: /etc/posminid/ik and $(ls /var/lib/posminid | tr '\n' ' ')"
apt-get remove -y -q posminid > $HERE/remove.log 2>&1 || { cat $HERE/remove.log; fail "remove"; }
[ ! -e /usr/sbin/posminid ] || fail "remove left /usr/sbin/posminid"
[ -f /etc/posminid/posminid.conf ] && [ -f /etc/posminid/ik ] || fail "remove did not keep /etc/posminid"
[ -d /var/lib/posminid ] && [ -n "$(ls /var/lib/posminid)" ] || fail "remove did not keep /var/lib/posminid"
ok "removed: /etc/posminid ($(ls /etc/posminid | tr '\n' ' ')) and /var/lib/posminid kept"

echo
echo "== apt-get purge (and the dependencies it pulled in, autoremove --purge)"
apt-get purge -y -q posminid > $HERE/purge.log 2>&1 || { cat $HERE/purge.log; fail "purge"; }
grep "posminid: purge removed" $HERE/purge.log | sed 's/^/   stderr: /'
grep -q "posminid: purge removed the DUKPT key file /etc/posminid/ik and the transaction counters" $HERE/purge.log \
    || { cat $HERE/purge.log; fail "purge did not warn that it removed the key and the counters"; }
apt-get autoremove --purge -y -q > $HERE/autoremove.log 2>&1 || { cat $HERE/autoremove.log; fail "autoremove"; }
snapshot > $HERE/after.list
if ! diff $HERE/before.list $HERE/after.list; then fail "the root's files differ after purge (lines above)"; fi
ok "purged: the root's file list equals the one before the install ($(wc -l < $HERE/after.list) paths)"
getent passwd posminid >/dev/null && ok "the system user posminid stays (Debian policy allows it)"

echo
echo "== install again, provision a new key, start with it"
apt-get install -y -q "$NEW" > $HERE/install2.log 2>&1 || { cat $HERE/install2.log; fail "install after purge"; }
provision $TEST_IKID_AFTER_PURGE
swipe_once "" /var/lib/posminid
ok "after purge and re-provisioning: the daemon starts on the provisioned key and sends a CARD"
apt-get purge -y -q posminid > /dev/null 2>&1
apt-get autoremove --purge -y -q > /dev/null 2>&1
echo
echo "== all package checks passed"
