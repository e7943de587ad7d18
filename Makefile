# Atlas TLS. `make` builds the library; `make demo` and `make check` also
# install what they need (Debian packages) when run as root.

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wformat-security
CFLAGS ?= -O2 -g
ATLAS_CFLAGS := -std=c11 $(WARN) -fPIC -fvisibility=hidden -pthread $(CFLAGS)
LIBS := -lssl -lcrypto -lunwind -ldl -pthread
# The library carries its own OpenSSL, linked statically and hidden: a host that exports
# OpenSSL's names itself (node's binary embeds one, without kTLS) would otherwise receive
# every SSL_* call Atlas makes, since the executable comes first in symbol lookup.
LIB_LIBS := -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -Wl,--exclude-libs,ALL -lunwind -ldl -pthread

BUILD := build
LIB := $(BUILD)/libatlas.so
# shim/check.c is the `atlas-preload.sh --check` program, not part of the library.
SRCS := $(filter-out shim/check.c,$(wildcard shim/*.c))
CHECK := $(BUILD)/atlas-check
OBJS := $(SRCS:shim/%.c=$(BUILD)/obj/%.o)
HDRS := $(wildcard shim/*.h include/*.h)

# Debian packages each target needs (tests/deps.sh installs or names them).
BUILD_PKGS := build-essential pkg-config libssl-dev libunwind-dev
DEMO_PKGS := $(BUILD_PKGS) python3 curl openssl
CHECK_PKGS := $(DEMO_PKGS) libcmocka-dev gnutls-bin procps clang-format \
	user-mode-linux kmod iproute2 strace nginx wrk busybox socat lighttpd nodejs

.PHONY: all lib demo check unit unit-build e2e deps-demo deps-check clean format-check

all: lib

lib: $(LIB) $(CHECK)

# The probe needs the kTLS commit point and the real-function table, nothing else.
$(CHECK): shim/check.c $(BUILD)/obj/ktls.o $(BUILD)/obj/real.o $(HDRS)
	$(CC) $(ATLAS_CFLAGS) -o $@ shim/check.c $(BUILD)/obj/ktls.o $(BUILD)/obj/real.o $(LIBS)

$(BUILD)/obj/%.o: shim/%.c $(HDRS) | $(BUILD)/obj
	$(CC) $(ATLAS_CFLAGS) -c -o $@ $<

$(LIB): $(OBJS) shim/atlas.map
	$(CC) $(ATLAS_CFLAGS) -shared -Wl,--version-script=shim/atlas.map -Wl,-z,defs \
		-o $@ $(OBJS) $(LIB_LIBS)

$(BUILD)/obj:
	mkdir -p $@

deps-demo:
	@tests/deps.sh $(DEMO_PKGS)

deps-check:
	@tests/deps.sh $(CHECK_PKGS)

demo: deps-demo
	@$(MAKE) --no-print-directory lib
	@demo/run.sh

# Unit tests: one cmocka binary per module, linked against the module's sources.
UNIT_TESTS := $(patsubst tests/unit/test_%.c,$(BUILD)/tests/test_%,$(wildcard tests/unit/test_*.c))
UNIT_LIB_OBJS := $(filter-out $(BUILD)/obj/hooks.o $(BUILD)/obj/init.o,$(OBJS))

$(BUILD)/tests/test_%: tests/unit/test_%.c $(UNIT_LIB_OBJS) | $(BUILD)/tests
	$(CC) $(ATLAS_CFLAGS) -Ishim -o $@ $< $(UNIT_LIB_OBJS) -lcmocka $(LIBS)

$(BUILD)/tests:
	mkdir -p $@

unit-build: $(LIB) $(UNIT_TESTS)

# `make unit` and `make e2e` run one group each (they assume `make check`'s packages are there).
unit: unit-build
	@tests/run.sh unit

e2e: lib
	@tests/run.sh e2e

# Every C file follows the committed .clang-format.
format-check:
	@out=$$(for f in $$(git ls-files '*.c' '*.h'); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$out" ]; then echo "not formatted (run clang-format -i): $$out"; exit 1; fi

check: deps-check
	@$(MAKE) --no-print-directory lib unit-build format-check
	@tests/run.sh

clean:
	rm -rf $(BUILD)

# `make bench`: Atlas against nginx's own TLS (and kTLS, inside User-Mode Linux), stunnel4,
# haproxy and hitch; results in build/bench/ (tests/bench/run.sh says what it measures).
# BENCH_QUICK=1 make bench is a smoke run of a minute or two.
BENCH_PKGS := $(DEMO_PKGS) nginx stunnel4 haproxy hitch wrk python3-matplotlib procps \
	user-mode-linux kmod iproute2

# make check runs tests/e2e/70-bench-smoke.sh (the harness in quick mode): it needs the proxies too.
CHECK_PKGS += stunnel4 haproxy hitch python3-matplotlib

.PHONY: bench deps-bench

deps-bench:
	@tests/deps.sh $(BENCH_PKGS)

bench: deps-bench
	@$(MAKE) --no-print-directory lib
	@tests/bench/run.sh $(BUILD)/bench
