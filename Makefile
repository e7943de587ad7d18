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
# clang's libFuzzer and sanitizer runtimes (make fuzz; make check runs the targets briefly).
FUZZ_PKGS := clang-14 libclang-rt-14-dev
CHECK_PKGS := $(DEMO_PKGS) libcmocka-dev gnutls-bin procps clang-format \
	user-mode-linux kmod iproute2 strace nginx wrk busybox socat lighttpd nodejs \
	$(FUZZ_PKGS)

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

# Sanitizer builds: the library and the unit tests again, instrumented, each in its own
# directory (build/asan: ASan+UBSan, any report fatal; build/tsan: TSan), with gcc, whose
# runtimes (libasan8, libubsan1, libtsan2) come with gcc-12. The library keeps its private,
# hidden OpenSSL (LIB_LIBS), so the hooks run the same code as in build/libatlas.so; that
# OpenSSL is not instrumented, Atlas's own code is. tests/e2e/50-sanitizers-unit.sh runs
# the unit tests under both and the normal ones under valgrind memcheck;
# tests/e2e/51-sanitizers.sh runs python's http.server and nginx on both libraries.
SAN_CC := gcc
SAN_PKGS := gcc libasan8 libubsan1 libtsan2 valgrind
CHECK_PKGS += $(SAN_PKGS)
SAN_FLAGS_asan := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_FLAGS_tsan := -fsanitize=thread
SAN_KINDS := asan tsan
SAN_LIBS := $(SAN_KINDS:%=$(BUILD)/%/libatlas.so)
SAN_UNIT_TESTS := $(foreach k,$(SAN_KINDS),$(UNIT_TESTS:$(BUILD)/tests/%=$(BUILD)/$(k)/tests/%))

define SAN_RULES
$(BUILD)/$(1)/obj/%.o: shim/%.c $(HDRS) | $(BUILD)/$(1)/obj
	$(SAN_CC) $(ATLAS_CFLAGS) $(SAN_FLAGS_$(1)) -c -o $$@ $$<

$(BUILD)/$(1)/libatlas.so: $(OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%) shim/atlas.map
	$(SAN_CC) $(ATLAS_CFLAGS) $(SAN_FLAGS_$(1)) -shared -Wl,--version-script=shim/atlas.map \
		-Wl,-z,defs -o $$@ $(OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%) $(LIB_LIBS)

$(BUILD)/$(1)/tests/test_%: tests/unit/test_%.c $(UNIT_LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%) \
		| $(BUILD)/$(1)/tests
	$(SAN_CC) $(ATLAS_CFLAGS) $(SAN_FLAGS_$(1)) -Ishim -o $$@ $$< \
		$(UNIT_LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%) -lcmocka $(LIBS)

$(BUILD)/$(1)/obj $(BUILD)/$(1)/tests:
	mkdir -p $$@
endef
$(foreach k,$(SAN_KINDS),$(eval $(call SAN_RULES,$(k))))

.PHONY: sanitize-build sanitize unit-asan unit-tsan unit-valgrind e2e-sanitizers deps-sanitize

deps-sanitize:
	@tests/deps.sh $(SAN_PKGS)

sanitize-build: $(SAN_LIBS) $(SAN_UNIT_TESTS)

# The flags of one kind (tests/e2e/50-sanitizers-unit.sh builds its control program with them).
san-flags-%:
	@echo $(SAN_FLAGS_$*)

# One kind each (the unit tests), or everything (`make sanitize`: unit tests under ASan+UBSan,
# TSan and valgrind, then python's http.server and nginx on each sanitizer library).
unit-asan unit-tsan: lib sanitize-build
	@SAN_ONLY=$(@:unit-%=%) bash tests/e2e/50-sanitizers-unit.sh
unit-valgrind: unit-build
	@SAN_ONLY=valgrind bash tests/e2e/50-sanitizers-unit.sh
e2e-sanitizers: lib sanitize-build
	@bash tests/e2e/51-sanitizers.sh
sanitize: deps-sanitize
	@$(MAKE) --no-print-directory lib unit-build sanitize-build
	@bash tests/e2e/50-sanitizers-unit.sh && bash tests/e2e/51-sanitizers.sh

# `make unit` and `make e2e` run one group each (they assume `make check`'s packages are there).
unit: unit-build
	@tests/run.sh unit

e2e: lib unit-build sanitize-build
	@tests/run.sh e2e

# Every C file follows the committed .clang-format.
format-check:
	@out=$$(for f in $$(git ls-files '*.c' '*.h'); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$out" ]; then echo "not formatted (run clang-format -i): $$out"; exit 1; fi

# Fuzzing (tests/fuzz/): libFuzzer targets, one per parser of untrusted bytes, built by
# clang with ASan and UBSan from their own copy of the shim objects (hooks.c and init.c
# left out, as for the unit tests). `make fuzz` runs each for FUZZ_SECONDS; make check
# runs each briefly over its committed corpus (tests/e2e/60-fuzz.sh).
FUZZ_CC := clang-14
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 $(WARN) -g -O1 -fno-omit-frame-pointer -pthread $(FUZZ_SAN)
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_OBJS := $(patsubst shim/%.c,$(FUZZ_DIR)/obj/%.o,$(filter-out shim/hooks.c shim/init.c,$(SRCS)))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build deps-fuzz

$(FUZZ_DIR)/obj/%.o: shim/%.c $(HDRS) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS) $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ishim -Itests/unit -o $@ $< $(FUZZ_OBJS) $(LIBS)

$(FUZZ_DIR)/obj:
	mkdir -p $@

deps-fuzz:
	@tests/deps.sh $(BUILD_PKGS) $(FUZZ_PKGS)

# Kept between builds: they are built by a pattern rule only.
.SECONDARY: $(FUZZ_OBJS)

fuzz-build: $(FUZZ_TARGETS)

fuzz: deps-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh long

check: deps-check
	@$(MAKE) --no-print-directory lib unit-build sanitize-build format-check
	@tests/run.sh

clean:
	rm -rf $(BUILD)

# `make bench`: Atlas against nginx's own TLS (and kTLS, inside User-Mode Linux), stunnel4,
# haproxy and hitch; results in build/bench/ (tests/bench/run.sh says what it measures).
# BENCH_QUICK=1 make bench is a smoke run of a minute or two.
BENCH_PKGS := $(DEMO_PKGS) nginx stunnel4 haproxy hitch wrk python3-matplotlib procps \
	user-mode-linux kmod iproute2 valgrind

# make check runs tests/e2e/70-bench-smoke.sh (the harness in quick mode): it needs the proxies too.
CHECK_PKGS += stunnel4 haproxy hitch python3-matplotlib

.PHONY: bench deps-bench

deps-bench:
	@tests/deps.sh $(BENCH_PKGS)

bench: deps-bench
	@$(MAKE) --no-print-directory lib
	@tests/bench/run.sh $(BUILD)/bench
