# licmon — build, test, run. `make run` and `make test` are the only set-up a
# newcomer needs: the first thing either does is install the Debian packages
# listed in tools/deps.txt that are missing (apt-get, as root or via sudo).
#
#   make            build everything into build/
#   make test       unit tests (cmocka) + integration tests (pytest, real stack)
#   make test SANITIZE=1   the same under ASan + UBSan (objects in build/san/)
#   make run        a local stack with a live demo feed; Ctrl-C stops it
#   make bench      benchmarks that print numbers
#   make format     clang-format every source; make format-check verifies
#   make lint       cppcheck over every C source (part of make test)

BUILD ?= build
ifeq ($(SANITIZE),1)
  override BUILD := $(BUILD)/san
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CC := gcc
OPT ?= -O2
CFLAGS := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
          -D_GNU_SOURCE -Ilib -I$(BUILD)/gen -MMD -MP $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
LDLIBS := -lzmq -lprotobuf-c -lrocksdb -ljansson -lmicrohttpd -lcurl -lxlsxwriter -lcrypto \
          -lpthread -lm
PYTHON := /usr/bin/python3
RUN_DIR ?= licmon-run
HTTP ?= 127.0.0.1:8080

.DEFAULT_GOAL := all
PROGRAMS := ingest sessionizer aggregator alerter exporter
DEPS_STAMP := $(BUILD)/.deps-ok
PROTO_C := $(BUILD)/gen/licmon.pb-c.c
PROTO_H := $(BUILD)/gen/licmon.pb-c.h

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/licmon.pb-c.o
LIB_A := $(BUILD)/liblicmon.a

# the dashboard's files, embedded into the exporter (exporter/web/, see
# tools/embed_assets.py), plus the one charting library the page uses:
# Chart.js (MIT) from Debian's libjs-chart.js (tools/deps.txt), copied with
# its licence into $(BUILD)/web-vendor/ and served at /vendor/chart.min.js.
# Nothing is fetched at run time, and nothing downloaded lands in the tree.
WEB_FILES := $(shell find exporter/web -type f -not -path '*/node_modules/*' 2>/dev/null)
WEB_ASSETS_C := $(BUILD)/gen/web_assets.c
EXTRA_exporter := $(BUILD)/obj/gen/web_assets.o
CHART_JS := /usr/share/javascript/chart.js/chart.min.js
CHART_JS_LICENSE := /usr/share/doc/libjs-chart.js/copyright
WEB_VENDOR := $(BUILD)/web-vendor
WEB_VENDOR_FILES := $(WEB_VENDOR)/vendor/chart.min.js $(WEB_VENDOR)/vendor/chart.js-LICENSE.txt
$(CHART_JS) $(CHART_JS_LICENSE): | $(DEPS_STAMP)
$(WEB_VENDOR)/vendor/chart.min.js: $(CHART_JS)
	@mkdir -p $(@D)
	@test -s $< || { echo "$<: missing; install libjs-chart.js (make deps)" >&2; exit 1; }
	cp $< $@
$(WEB_VENDOR)/vendor/chart.js-LICENSE.txt: $(CHART_JS_LICENSE)
	@mkdir -p $(@D)
	@test -s $< || { echo "$<: missing; install libjs-chart.js (make deps)" >&2; exit 1; }
	cp $< $@
$(WEB_ASSETS_C): $(WEB_FILES) $(WEB_VENDOR_FILES) tools/embed_assets.py | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(PYTHON) tools/embed_assets.py exporter/web $(WEB_VENDOR) $@
$(BUILD)/obj/gen/web_assets.o: $(WEB_ASSETS_C)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iexporter -c -o $@ $<

# each program: main.c wires, the other .c files are its modules (also
# linked into the unit tests through lib<program>.a)
define PROGRAM_RULES
$(1)_MODS := $$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c))
$(1)_MOD_OBJ := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_MODS)) $$(EXTRA_$(1))
$(BUILD)/lib$(1).a: $$($(1)_MOD_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/bin/licmon-$(1): $(BUILD)/obj/$(1)/main.o $(BUILD)/lib$(1).a $(LIB_A)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_RULES,$(p))))

CTL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/licmonctl/*.c))
BINS := $(foreach p,$(PROGRAMS),$(BUILD)/bin/licmon-$(p)) $(BUILD)/bin/licmonctl
PROG_ARCHIVES := $(foreach p,$(PROGRAMS),$(BUILD)/lib$(p).a)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.SECONDARY:
.PHONY: all deps test unit integration run bench fuzz format format-check lint clean
all: $(BINS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/deps.txt tools/install-deps.sh
	@sh tools/install-deps.sh tools/deps.txt
	@mkdir -p $(@D) && touch $@

$(PROTO_C) $(PROTO_H) &: proto/licmon.proto | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto proto/licmon.proto

$(BUILD)/obj/gen/licmon.pb-c.o: $(PROTO_C)
	@mkdir -p $(@D)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(PROTO_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/licmonctl: $(CTL_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(PROG_ARCHIVES) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(PROG_ARCHIVES) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BINS)
	LICMON_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

test: $(BINS) $(UNIT_BINS) $(FUZZ_REPLAY) format-check lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory fuzz-short

run: $(BINS)
	$(BUILD)/bin/licmonctl up --dir $(RUN_DIR) --http $(HTTP) --demo --foreground

bench: $(BINS) $(BENCH_BINS)
	@set -e; for b in $(BENCH_BINS); do echo "== $$b"; $$b; done
	LICMON_BIN=$(abspath $(BUILD)/bin) $(PYTHON) tests/bench/run_bench.py

# The chaos test's long form (tests/soak/): about 200,000 events, at least 24
# kill -9 of random programs, every API answer compared with a run without
# kills and with the workload's model. SOAK_RUNS=10 runs it ten times in a
# row (new seeds; LICMON_CHAOS_SEED=N fixes the first). About 2-3 minutes a run.
SOAK_RUNS ?= 1
.PHONY: soak
soak: $(BINS)
	LICMON_BIN=$(abspath $(BUILD)/bin) SOAK_RUNS=$(SOAK_RUNS) $(PYTHON) -m pytest -q -s \
	    -p no:cacheprovider tests/soak

# libFuzzer harnesses (tests/fuzz/fuzz_*.c, see tests/fuzz/README.md). The
# sources they reach (lib, proto and every program's modules) are compiled
# once with clang into one instrumented archive; each harness links against
# it. `make fuzz` runs each harness FUZZ_SECONDS over its corpus in
# tests/fuzz/corpus/<name> (new inputs are kept there) after replaying the
# crash inputs kept in tests/fuzz/crashes/<name>/; a crash, leak or
# sanitizer report fails the target and leaves the input in
# tests/fuzz/crashes/. `make fuzz-short` is the quick pass for CI:
# FUZZ_SHORT_SECONDS each, new inputs into a scratch folder, nothing in the
# tree changes.
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZERS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 5
FUZZ_MOD_SRC := $(LIB_SRC) $(foreach p,$(PROGRAMS),$(filter-out $(p)/main.c,$(wildcard $(p)/*.c)))
FUZZ_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_MOD_SRC)) $(FUZZ_DIR)/obj/gen/licmon.pb-c.o
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -D_GNU_SOURCE -DLICMON_FUZZ -Ilib -I$(BUILD)/gen
$(BUILD)/.deps-fuzz-ok: tools/deps-fuzz.txt
	@sh tools/install-deps.sh tools/deps-fuzz.txt
	@mkdir -p $(@D) && touch $@
$(FUZZ_DIR)/obj/%.o: %.c $(PROTO_H) | $(BUILD)/.deps-fuzz-ok
	@mkdir -p $(@D)
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/obj/gen/licmon.pb-c.o: $(PROTO_C) | $(BUILD)/.deps-fuzz-ok
	@mkdir -p $(@D)
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_DIR)/libfuzzdeps.a: $(FUZZ_OBJ)
	@rm -f $@ && ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libfuzzdeps.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_DIR)/libfuzzdeps.a $(LDLIBS)
# runs $(1) seconds of each harness; $(2): where new inputs go ("tree" or
# "scratch"). The output of each run is kept in $(FUZZ_DIR)/log/<name>.log.
define FUZZ_RUN
	@mkdir -p $(FUZZ_DIR)/log; fail=0; for n in $(FUZZ_NAMES); do \
	  f=$(FUZZ_DIR)/fuzz_$$n; log=$(FUZZ_DIR)/log/$$n.log; \
	  mkdir -p tests/fuzz/corpus/$$n; \
	  if [ "$(2)" = scratch ]; then rm -rf $(FUZZ_DIR)/scratch/$$n; \
	    mkdir -p $(FUZZ_DIR)/scratch/$$n; dirs="$(FUZZ_DIR)/scratch/$$n tests/fuzz/corpus/$$n"; \
	    art=$(FUZZ_DIR)/crashes/$$n; \
	  else dirs=tests/fuzz/corpus/$$n; art=tests/fuzz/crashes/$$n; fi; \
	  mkdir -p $$art; \
	  crashes=$$(ls -d tests/fuzz/crashes/$$n/* 2>/dev/null); \
	  if [ -n "$$crashes" ] && ! $$f -runs=1 $$crashes >$$log.replay 2>&1; then \
	    echo "== $$n: a kept crash input fails again (see $$log.replay)"; fail=1; continue; fi; \
	  if $$f -max_total_time=$(1) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
	        -artifact_prefix=$$art/ $$dirs >$$log 2>&1; then r=ok; \
	  else r="FAILED (see $$log and $$art/)"; fail=1; fi; \
	  echo "== $$n: $$r, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$log) runs," \
	       "corpus $$(ls tests/fuzz/corpus/$$n | wc -l) inputs, peak rss" \
	       "$$(sed -n 's/^stat::peak_rss_mb: *//p' $$log) MB"; \
	  grep -E '^(==[0-9]+==|SUMMARY)' $$log | head -5; \
	done; exit $$fail
endef
# `make test` replays every committed corpus and crash input through each
# harness once, linked with the ordinary build (gcc, and ASan + UBSan under
# SANITIZE=1) and tests/fuzz/replay_main.c instead of libFuzzer: a few
# seconds, no clang, no randomness (see tests/fuzz/README.md for why the
# fuzzing itself is not in `make test`).
FUZZ_REPLAY := $(patsubst %,$(BUILD)/fuzz-replay/fuzz_%,$(FUZZ_NAMES))
$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay_main.o \
                             $(PROG_ARCHIVES) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
fuzz-replay: $(FUZZ_REPLAY)
	@set -e; for n in $(FUZZ_NAMES); do \
	  $(BUILD)/fuzz-replay/fuzz_$$n $$(ls -d tests/fuzz/corpus/$$n tests/fuzz/crashes/$$n \
	    2>/dev/null); done
.PHONY: fuzz fuzz-short fuzz-build fuzz-replay
fuzz-build: $(FUZZERS)
fuzz: $(FUZZERS)
	$(call FUZZ_RUN,$(FUZZ_SECONDS),tree)
fuzz-short: $(FUZZERS)
	$(call FUZZ_RUN,$(FUZZ_SHORT_SECONDS),scratch)
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
format: | $(DEPS_STAMP)
	clang-format -i $(FORMAT_SRC)
format-check: | $(DEPS_STAMP)
	@clang-format --dry-run --Werror $(FORMAT_SRC)

# cppcheck's warning, portability and performance checks (ARCHITECTURE.md:
# "no warnings from cppcheck"); a finding fails the build. It does not read
# the system headers (slow, and not ours to check), so it is told what it
# cannot see there: protobuf-c's version macros (the header itself, which
# the generated code checks with #error), jansson's iteration macros
# (tools/cppcheck/jansson.cfg), and that C11's _Noreturn means noreturn
# (cppcheck 2.10 only knows the GNU attribute: without it every
# `if (!p) log_fatal(...)` reads as a possible NULL dereference after).
lint: $(PROTO_H) | $(DEPS_STAMP)
	@cppcheck --std=c11 --enable=warning,portability,performance --error-exitcode=1 --quiet \
	  --inline-suppr --suppress=missingIncludeSystem --library=tools/cppcheck/jansson.cfg \
	  --include=/usr/include/protobuf-c/protobuf-c.h -D_GNU_SOURCE \
	  '-D_Noreturn=__attribute__((noreturn))' -Ilib -I$(BUILD)/gen \
	  --template='{file}:{line}: {severity} [{id}] {message}' \
	  lib $(PROGRAMS) tools tests

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
