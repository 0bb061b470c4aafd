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
.PHONY: all deps test unit integration run bench fuzz format format-check clean
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

test: $(BINS) $(UNIT_BINS) format-check
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

run: $(BINS)
	$(BUILD)/bin/licmonctl up --dir $(RUN_DIR) --http $(HTTP) --demo --foreground

bench: $(BINS) $(BENCH_BINS)
	@set -e; for b in $(BENCH_BINS); do echo "== $$b"; $$b; done
	LICMON_BIN=$(abspath $(BUILD)/bin) $(PYTHON) tests/bench/run_bench.py

# libFuzzer harnesses: each is linked from sources with clang, instrumented
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(LIB_SRC) ingest/ingest_validate.c
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
               -I$(BUILD)/gen
$(BUILD)/.deps-fuzz-ok: tools/deps-fuzz.txt
	@sh tools/install-deps.sh tools/deps-fuzz.txt
	@mkdir -p $(@D) && touch $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_SRC) $(PROTO_C) | $(BUILD)/.deps-fuzz-ok
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) $(PROTO_C) $(LDLIBS)
fuzz: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f | sed 's/^fuzz_//'); \
	  mkdir -p tests/fuzz/corpus/$$n tests/fuzz/crashes; echo "== $$n"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -artifact_prefix=tests/fuzz/crashes/ tests/fuzz/corpus/$$n 2>&1 | \
	      grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY)' ; done

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
format: | $(DEPS_STAMP)
	clang-format -i $(FORMAT_SRC)
format-check: | $(DEPS_STAMP)
	@clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
