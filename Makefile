# posminid: the two commands a fresh Debian machine needs are `make demo` and `make test`.
# Each installs what is missing first (apt only when something is absent, so it also works offline).

SWIFT        ?= swift
SWIFT_FLAGS  ?=
# Release builds carry the Swift runtime inside (a terminal has no Swift toolchain installed).
RELEASE      := -c release --static-swift-stdlib
# Debian packages the build and the test suite need. Later rigs add theirs here.
#   libasound2-dev, libudev-dev, libssl-dev: the C libraries (pkg-config finds them; libcrypto for TDES)
#   pulseaudio, pulseaudio-utils, libasound2-plugins: a PulseAudio null sink as a paced virtual
#     sound card, reached through ALSA's `pulse` device (the capture tests)
#   systemd: systemd-analyze (the units are verified) and systemd-socket-activate (the daemon
#     is started on a passed socket); util-linux: setpriv (a refused user connects)
#   umockdev, gir1.2-umockdev-1.0, python3-gi: a udev testbed (sound cards plugged and removed
#     for real libudev, Tests/Harness/udev_testbed.py)
#   python3-jsonschema: every message the suite sees is checked against docs/schema
#   prometheus (promtool), prometheus-node-exporter: the metrics are checked by Prometheus's own
#     tools (docs/METRICS.md)
APT_PACKAGES := pkg-config python3 libasound2-dev libudev-dev libssl-dev pulseaudio pulseaudio-utils libasound2-plugins systemd util-linux umockdev gir1.2-umockdev-1.0 python3-gi python3-jsonschema prometheus prometheus-node-exporter

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deb deb-deps test-package test-package-deps all deps build release test test-sanitize test-faults soak soak-live bench memory fuzz demo man install clean

all: build

# Installs what dpkg does not already report as installed (a virtual package counts as installed
# when an installed package provides it): apt only when something is missing.
define apt_ensure
@missing=""; \
for p in $(1); do \
  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || \
  dpkg-query -W -f='$${Status}|$${Provides}\n' 2>/dev/null | grep "^install ok installed|" \
    | sed 's/^[^|]*|//' | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx "$$p" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  echo "make: installing missing Debian packages:$$missing"; \
  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
else \
  echo "make: Debian packages present:$(1)"; \
fi
endef

deps:
	$(call apt_ensure,$(APT_PACKAGES))

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

release: deps
	$(SWIFT) build $(RELEASE) $(SWIFT_FLAGS)

# Every line the suite's daemons (under the test key) and hub tests send is kept in
# .build/messages and checked against docs/schema/messages.schema.json after the suite.
MESSAGES := $(CURDIR)/.build/messages
test: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	rm -rf $(MESSAGES) && mkdir -p $(MESSAGES)
	POSMINID_TEST_MESSAGE_LOG=$(MESSAGES) $(SWIFT) test --skip-build $(SWIFT_FLAGS)
	python3 Tests/Harness/check_messages.py docs/schema/messages.schema.json $(MESSAGES) --at-least 1000

# The threaded parts under ThreadSanitizer (its own build folder; not part of `make test`):
# the SPSC ring between two threads, reader sessions with their capture and decoder threads, and
# the device monitor thread (jack events from another thread, watches added and dropped).
# Then the whole suite under AddressSanitizer, the daemons it starts built with it too.
test-sanitize: deps
	$(SWIFT) build --build-tests --sanitize=thread --build-path .build-tsan $(SWIFT_FLAGS)
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --skip-build --sanitize=thread --build-path .build-tsan \
	  --filter 'RingTests|SessionTests|JackTests' $(SWIFT_FLAGS)
	$(SWIFT) build --build-tests --sanitize=address --build-path .build-asan $(SWIFT_FLAGS)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 POSMINID_EXECUTABLE=$(CURDIR)/.build-asan/debug/posminid \
	  $(SWIFT) test --skip-build --sanitize=address --build-path .build-asan $(SWIFT_FLAGS)

# The fault runs at full length: 200 cards with SIGKILL at random moments (no KSN published
# twice), a full and a read-only state directory. `make test` runs a shorter kill loop.
test-faults: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	POSMINI_CRASH_CARDS=200 $(SWIFT) test --skip-build --filter 'FaultTests' $(SWIFT_FLAGS)

# An hour of audio (a swipe every 4 s over noise) through the running daemon, as fast as it
# decodes, with a watcher and a POS app: every swipe read, heap, descriptors and threads back to
# idle (`make test` runs ten minutes of audio). SOAK_MINUTES=600 for ten hours.
SOAK_MINUTES ?= 60
soak: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	POSMINI_SOAK_MINUTES=$(SOAK_MINUTES) $(SWIFT) test --skip-build --filter 'SoakTests' $(SWIFT_FLAGS)

# The release daemon capturing in real time from a PulseAudio null sink while SOAK_MINUTES (60)
# minutes of swipes are played into it, with a watcher and a POS app: every swipe read, and
# resident memory, descriptors and threads after the soak as after its first minute, in the same
# process (SOAK_MINUTES + 3 minutes of wall time, little CPU).
soak-live: deps
	$(SWIFT) build $(RELEASE) --product posminid $(SWIFT_FLAGS)
	$(SWIFT) build $(RELEASE) --product posmini-bench $(SWIFT_FLAGS)
	BIN=.build/release SOAK_MINUTES=$(SOAK_MINUTES) sh scripts/soak-live.sh

# libFuzzer with AddressSanitizer on the sample decoder, track decoding and field parsing, the WAV
# reader and the protocol parser (Fuzz/: a package of its own). Each target runs FUZZ_SECONDS
# from the checked-in seeds (Fuzz/Seeds) plus the corpus it grew before (.build/fuzz-corpus);
# a crash stops it and leaves the input in Fuzz/Crashes: add it to Fuzz/Regressions/<target>/,
# which `make test` replays. Prints executions and coverage per target. FUZZ_RUNS=N runs N
# executions per target instead of a time. Input lengths: track bits up to 256 bytes (2 048
# bits, beyond any swipe's stream), decoder audio up to 4 KiB (its cost grows with the input),
# WAV files and request lines up to 64 KiB.
FUZZ_SECONDS ?= 300
FUZZ_RUNS    ?=
FUZZ_TARGETS ?= decoder tracks wav protocol
fuzz: deps
	cd Fuzz && $(SWIFT) build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld $(SWIFT_FLAGS)
	@mkdir -p Fuzz/Crashes
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build/fuzz-corpus/$$t; \
	  case $$t in tracks) len=256;; decoder) len=4096;; *) len=65536;; esac; \
	  if [ -n "$(FUZZ_RUNS)" ]; then limit="-runs=$(FUZZ_RUNS)"; else limit="-max_total_time=$(FUZZ_SECONDS)"; fi; \
	  echo "fuzz-$$t: $$limit, inputs up to $$len bytes"; \
	  Fuzz/.build/release/fuzz-$$t $$limit -max_len=$$len -print_final_stats=1 \
	    -artifact_prefix=Fuzz/Crashes/$$t- .build/fuzz-corpus/$$t Fuzz/Seeds/$$t > .build/fuzz-$$t.log 2>&1; \
	  status=$$?; \
	  grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" .build/fuzz-$$t.log; \
	  if [ $$status -ne 0 ]; then echo "fuzz-$$t FOUND A CRASH: see .build/fuzz-$$t.log and Fuzz/Crashes"; exit 1; fi; \
	done

# The figures: decoder accuracy grid, no-card streams, false accepts, throughput and
# allocations; the capture pipeline's ring stress, capture-loop allocations and latency (steady
# input and after a level change); a client's reply time while a replay floods the daemon
# (release build, several minutes on 2 cores).
bench: deps
	$(SWIFT) build $(RELEASE) --product posmini-bench $(SWIFT_FLAGS)
	$(SWIFT) build $(RELEASE) --product posminid $(SWIFT_FLAGS)
	.build/release/posmini-bench

# Resident memory of the release daemon: idle, and after an hour of audio (1 440 swipes).
memory: deps
	$(SWIFT) build $(RELEASE) --product posminid $(SWIFT_FLAGS)
	$(SWIFT) build $(RELEASE) --product posmini-bench $(SWIFT_FLAGS)
	BIN=.build/release sh scripts/memory.sh

# The product working on a synthesized reader: the daemon replaying a two-head reader's recording
# under the published test key, a POS app arming it for three cards, a watcher, the processor's
# decryption, the status (release build; several minutes the first time).
demo: deps
	$(SWIFT) build $(RELEASE) --product posminid $(SWIFT_FLAGS)
	$(SWIFT) build $(RELEASE) --product posminictl $(SWIFT_FLAGS)
	$(SWIFT) build $(RELEASE) --product posmini-bench $(SWIFT_FLAGS)
	BIN=.build/release sh scripts/demo.sh

# Where `make install` puts things (Debian's layout by default; DESTDIR for packaging).
PREFIX  ?= /usr
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system

install: release
	install -D -m 0755 .build/release/posminid $(DESTDIR)$(PREFIX)/sbin/posminid
	install -D -m 0755 .build/release/posminictl $(DESTDIR)$(PREFIX)/bin/posminictl
	sed 's|^ExecStart=/usr/sbin/posminid|ExecStart=$(PREFIX)/sbin/posminid|' systemd/posminid.service > posminid.service.tmp
	install -D -m 0644 posminid.service.tmp $(DESTDIR)$(UNITDIR)/posminid.service
	rm -f posminid.service.tmp
	install -D -m 0644 systemd/posminid.socket $(DESTDIR)$(UNITDIR)/posminid.socket
	install -D -m 0644 systemd/posminid.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/posminid.conf
	install -D -m 0644 systemd/posminid-metrics.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/posminid-metrics.conf
	install -D -m 0644 docs/METRICS.md $(DESTDIR)$(PREFIX)/share/doc/posminid/METRICS.md
	install -D -m 0644 contrib/prometheus/posminid.rules.yml $(DESTDIR)$(PREFIX)/share/doc/posminid/contrib/prometheus/posminid.rules.yml
	install -D -m 0644 contrib/grafana/posminid.json $(DESTDIR)$(PREFIX)/share/doc/posminid/contrib/grafana/posminid.json
	install -D -m 0644 udev-rules/72-posmini.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/72-posmini.rules
	install -D -m 0644 data/compatibility.list $(DESTDIR)$(PREFIX)/share/posminid/compatibility.list
	install -D -m 0644 data/sample-swipe.wav $(DESTDIR)$(PREFIX)/share/posminid/sample-swipe.wav
	install -D -m 0644 man/posminid.8 $(DESTDIR)$(PREFIX)/share/man/man8/posminid.8
	install -D -m 0644 man/posminictl.1 $(DESTDIR)$(PREFIX)/share/man/man1/posminictl.1
	install -D -m 0644 examples/posminid.conf $(DESTDIR)$(PREFIX)/share/doc/posminid/posminid.conf.example
	install -D -m 0644 docs/PROTOCOL.md $(DESTDIR)$(PREFIX)/share/doc/posminid/PROTOCOL.md
	install -D -m 0644 docs/SECURITY.md $(DESTDIR)$(PREFIX)/share/doc/posminid/SECURITY.md
	install -D -m 0644 docs/DIAGNOSE.md $(DESTDIR)$(PREFIX)/share/doc/posminid/DIAGNOSE.md
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/posminid/README.md
	install -D -m 0644 examples/pos_client.py $(DESTDIR)$(PREFIX)/share/doc/posminid/examples/pos_client.py
	install -D -m 0644 clients/python/posmini/__init__.py $(DESTDIR)$(PREFIX)/share/doc/posminid/examples/posmini/__init__.py
	install -D -m 0644 clients/python/posmini/client.py $(DESTDIR)$(PREFIX)/share/doc/posminid/examples/posmini/client.py
	[ -e $(DESTDIR)/etc/posminid/posminid.conf ] || install -D -m 0644 examples/posminid.conf $(DESTDIR)/etc/posminid/posminid.conf

# The Debian package (debian/; README "Install on Debian"): built by dpkg-buildpackage, with the
# Swift on PATH, from a copy of the tree (the files git tracks or would track; without git, all
# but the build folders: a package build never sees .build/). The .deb lands in dist/. Needs
# debhelper (which provides dh-sequence-installsysusers) and dpkg-dev.
DEB_PACKAGES := debhelper dh-sequence-installsysusers dpkg-dev libasound2-dev libudev-dev libssl-dev pkg-config
# make test-package: lintian, and a fresh Debian 12 root made by mmdebstrap.
TEST_PACKAGE_PACKAGES := $(DEB_PACKAGES) lintian mmdebstrap file
DEB_TREE := $(CURDIR)/.build-deb

deb-deps:
	$(call apt_ensure,$(DEB_PACKAGES))

deb: deb-deps
	@command -v $(SWIFT) >/dev/null 2>&1 || { echo "make deb: no $(SWIFT) on PATH: the package is built with the Swift toolchain from swift.org (6.3 or later; debian/README.source), which Debian does not package" >&2; exit 2; }
	rm -rf $(DEB_TREE) && mkdir -p $(DEB_TREE)/posminid dist
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$$f" ] || [ -L "$$f" ] && printf "%s\0" "$$f"; done' sh \
	    | tar --null -T - -cf - | tar -xf - -C $(DEB_TREE)/posminid; \
	else \
	  tar --exclude=./.build --exclude='./.build-*' --exclude='./.build_*' --exclude=./dist -cf - . | tar -xf - -C $(DEB_TREE)/posminid; \
	fi
	cd $(DEB_TREE)/posminid && SWIFT="$$(command -v $(SWIFT))" dpkg-buildpackage -b -us -uc
	rm -f dist/posminid_* dist/posminid-dbgsym_*
	mv $(DEB_TREE)/posminid_* $(DEB_TREE)/posminid-dbgsym_* dist/ 2>/dev/null || mv $(DEB_TREE)/posminid_* dist/
	@ls -l dist/

test-package-deps:
	$(call apt_ensure,$(TEST_PACKAGE_PACKAGES))

# Not part of `make test` (it takes a package build and a Debian root): lintian on the package,
# then install, reinstall, upgrade, remove and purge in a fresh Debian 12 root (scripts/test-package.sh).
test-package: test-package-deps deb
	sh scripts/test-package.sh dist

# The man pages' reference part, from the argument parsers (committed in man/).
man: release
	$(SWIFT) build --product generate-manual-tool $(SWIFT_FLAGS) 2>/dev/null || true
	$$(find .build -name generate-manual-tool -type f -perm -u+x | head -1) .build/release/posminid --section 8 --authors "posminid developers" --output-directory man
	$$(find .build -name generate-manual-tool -type f -perm -u+x | head -1) .build/release/posminictl --section 1 --authors "posminid developers" --output-directory man

clean:
	rm -rf .build .build-* dist
