# libaemp - one Makefile for the library, the aemp tool, tests, benchmarks.
#
#   make            library (static + shared) and the aemp tool, in build/
#   make check      set-up, then the whole suite twice: gcc build, and a
#                   clang -fsanitize=address,undefined build in build-asan/
#   make test       the suite on this build (BUILD, SAN); TESTS="md6 hs_"
#                   runs only the tests whose names contain a word of it;
#                   LIST=1 lists the (selected) test names, one a line,
#                   without running them (the runner's --list)
#   make demo       set-up, then a short story with a live protocol-1 network
#   make bench      set-up, then the benchmarks
#   make install    PREFIX (default /usr/local) and DESTDIR honoured
#   make clean

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SAN     ?=
TESTS   ?=
LIST    ?=

VERSION := $(shell sed -n 's/^\#define AEMP_VERSION "\(.*\)"/\1/p' include/aemp.h)
SOMAJOR := 0

ifeq ($(SAN),1)
CC      := clang
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     ?= -O1
else
CC      ?= cc
SANFLAGS :=
OPT     ?= -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags jansson libssl libcrypto 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs jansson libssl libcrypto 2>/dev/null || echo -ljansson -lssl -lcrypto)

# The library's layers (README, "Layout"): core (sans-I/O), node (the
# drivers), one folder per dialect. scripts/layers.sh keeps them apart.
SRC_DIRS := src/core src/node src/p0 src/p1
SRC_INC  := $(SRC_DIRS:%=-I%)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -fPIC \
              -fvisibility=hidden -Iinclude $(SRC_INC) $(PKG_CFLAGS) -MMD -MP
LIBS    := -lev $(PKG_LIBS) -lm
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)

LIB_SRCS  := $(sort $(wildcard src/*/*.c))
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TEST_SRCS := $(sort $(wildcard tests/*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
EXAMPLES  := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCHES   := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

STATIC := $(BUILD)/libaemp.a
SHARED := $(BUILD)/libaemp.so.$(VERSION)
AEMP   := $(BUILD)/aemp
TESTBIN := $(BUILD)/aemp_tests

SHARED_DIR ?= $(abspath $(CURDIR)/../shared)

.PHONY: FORCE all check layers test demo bench install uninstall clean deps deps-check examples

all: $(STATIC) $(SHARED) $(AEMP) $(BUILD)/aemp.pc $(EXAMPLES)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DAEMP_BUILDING -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libaemp.so.$(SOMAJOR) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)
	ln -sf libaemp.so.$(VERSION) $(BUILD)/libaemp.so.$(SOMAJOR)
	ln -sf libaemp.so.$(SOMAJOR) $(BUILD)/libaemp.so

$(AEMP): $(TOOL_OBJS) $(STATIC)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TOOL_OBJS) $(STATIC) $(LIBS)

$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LIBS)

# The test list is generated from the TEST(name) lines of tests/*.c.
# Regenerated on every run, replaced only when it changes.
$(BUILD)/tests/test_list.h: FORCE
	@mkdir -p $(dir $@)
	@grep -h -o '^TEST([A-Za-z0-9_]*)' $(TEST_SRCS) | sed 's/^TEST(\(.*\))/X(\1)/' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@
	@rm -f $@.tmp

FORCE:

$(BUILD)/tests/runner.o: $(BUILD)/tests/test_list.h
$(BUILD)/tests/runner.o: ALL_CFLAGS += -I$(BUILD)/tests

$(TESTBIN): $(TEST_OBJS) $(STATIC)
	$(CC) $(LDFLAGS_ALL) -o $@ $(TEST_OBJS) $(STATIC) $(LIBS)

$(BUILD)/aemp.pc: aemp.pc.in include/aemp.h
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

deps:
	@sh scripts/deps.sh build

deps-check:
	@sh scripts/deps.sh check

# Fails when a core file reaches the loop, sockets or the node, or a
# node-layer file reaches into a dialect's folder.
layers:
	@sh scripts/layers.sh

# Runs the suite on this build (BUILD/SAN select which); ends with
# "N passed, N failed, N skipped". LIST=1 only lists the tests.
ifeq ($(LIST),1)
test: $(TESTBIN)
	@./$(TESTBIN) --list $(TESTS)
else
test: $(TESTBIN) $(AEMP) $(EXAMPLES)
	AEMP_SHARED=$(SHARED_DIR) AEMP_BIN=$(abspath $(AEMP)) AEMP_BUILD=$(abspath $(BUILD)) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	./$(TESTBIN) $(TESTS)
endif

check: deps-check layers
	$(MAKE) test
	$(MAKE) BUILD=build-asan SAN=1 test

demo: deps
	$(MAKE) all
	sh scripts/demo.sh $(abspath $(AEMP))

bench: deps
	$(MAKE) all $(BENCHES)
	sh scripts/bench.sh $(abspath $(BUILD))

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib \
	           $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
	           $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 include/aemp.h $(DESTDIR)$(PREFIX)/include/aemp.h
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/libaemp.a
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libaemp.so.$(VERSION)
	ln -sf libaemp.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libaemp.so.$(SOMAJOR)
	ln -sf libaemp.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libaemp.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' aemp.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/aemp.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/aemp.pc
	install -m 755 $(AEMP) $(DESTDIR)$(PREFIX)/bin/aemp
	if [ -f docs/aemp.1 ]; then install -m 644 docs/aemp.1 $(DESTDIR)$(PREFIX)/share/man/man1/aemp.1; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/aemp.h $(DESTDIR)$(PREFIX)/lib/libaemp.a \
	      $(DESTDIR)$(PREFIX)/lib/libaemp.so* $(DESTDIR)$(PREFIX)/lib/pkgconfig/aemp.pc \
	      $(DESTDIR)$(PREFIX)/bin/aemp $(DESTDIR)$(PREFIX)/share/man/man1/aemp.1

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(TEST_OBJS:.o=.d)
-include $(BENCHES:%=%.d)

# ==== fuzz: fuzzing and the network-namespace tests =======================
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="json framer"] [FUZZ_FLAGS=...]
#       Builds each target with clang into build-fuzz/ twice: fuzz_NAME
#       (libFuzzer, ASan, UBSan) and replay_NAME (the plain corpus driver,
#       fuzz/replay.c). Replays the committed corpus fuzz/corpus/NAME, then
#       fuzzes each target, one after the other, for FUZZ_SECONDS on a copy
#       of it in build-fuzz/corpus/NAME, so the committed corpus never grows
#       by itself. Findings land in build-fuzz/artifacts/NAME/. The corpora
#       are also replayed by `make check` (tests/test_fuzz_replay.c).
#   make netns-test
#       Only the tests that build their own hosts from network namespaces
#       (tests/test_netns.c; they need root and skip without it).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= handshake handshake1 framer json noderef rcfile storable cbor global requests $(if $(wildcard tools/args.c),args)
FUZZ_FLAGS   ?=
FUZZ_BUILD   := build-fuzz
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -Iinclude $(SRC_INC) $(PKG_CFLAGS) -DFUZZ_STANDALONE
FUZZ_COV_OBJS   := $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/cov/%.o)
FUZZ_PLAIN_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/plain/%.o)

.PHONY: fuzz netns-test

$(FUZZ_BUILD)/cov/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DAEMP_BUILDING -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/plain/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DAEMP_BUILDING -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h fuzz/fuzz_hs.h $(FUZZ_COV_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_COV_OBJS) $(LIBS)

$(FUZZ_BUILD)/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h fuzz/fuzz_hs.h $(FUZZ_PLAIN_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< fuzz/replay.c $(FUZZ_PLAIN_OBJS) $(LIBS)

fuzz:
	@sh scripts/deps.sh fuzz
	$(MAKE) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/replay_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  ./$(FUZZ_BUILD)/replay_$$t fuzz/corpus/$$t; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
	  cp -n fuzz/corpus/$$t/* $(FUZZ_BUILD)/corpus/$$t/; \
	  dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ./$(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ $$dict $(FUZZ_FLAGS) \
	      $(FUZZ_BUILD)/corpus/$$t; \
	done

netns-test:
	$(MAKE) test TESTS=netns_

-include $(FUZZ_COV_OBJS:.o=.d) $(FUZZ_PLAIN_OBJS:.o=.d)
# ==== end of fuzz: ========================================================
