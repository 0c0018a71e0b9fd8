# posminid: the two commands a fresh Debian machine needs are `make demo` and `make test`.
# Each installs what is missing first (apt only when something is absent, so it also works offline).

SWIFT        ?= swift
SWIFT_FLAGS  ?=
# Debian packages the build and the test suite need. Later rigs add theirs here.
#   libasound2-dev, libudev-dev: the C libraries (pkg-config finds them)
#   pulseaudio, pulseaudio-utils, libasound2-plugins: a PulseAudio null sink as a paced virtual
#     sound card, reached through ALSA's `pulse` device (the capture tests)
#   systemd: systemd-analyze (the units are verified) and systemd-socket-activate (the daemon
#     is started on a passed socket); util-linux: setpriv (a refused user connects)
APT_PACKAGES := pkg-config libasound2-dev libudev-dev pulseaudio pulseaudio-utils libasound2-plugins systemd util-linux

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test test-sanitize bench demo clean

all: build

# Installs only what dpkg does not already report as installed.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "make: Debian packages present:$(APT_PACKAGES)"; \
	fi

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

release: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS)

test: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_FLAGS)

# The threaded parts under ThreadSanitizer (its own build folder; not part of `make test`):
# the SPSC ring between two threads and reader sessions with their capture and decoder threads.
test-sanitize: deps
	$(SWIFT) build --build-tests --sanitize=thread --build-path .build-tsan $(SWIFT_FLAGS)
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --skip-build --sanitize=thread --build-path .build-tsan \
	  --filter 'RingTests|SessionTests' $(SWIFT_FLAGS)

# The figures: decoder accuracy grid, no-card streams, false accepts, throughput and
# allocations; the capture pipeline's ring stress, capture-loop allocations and latency
# (release build, several minutes on 2 cores).
bench: deps
	$(SWIFT) build -c release --product posmini-bench $(SWIFT_FLAGS)
	.build/release/posmini-bench

clean:
	rm -rf .build .build-*
