# pipetrace — build, test, demo, bench, install.
#
#   make            the pipetrace binary and libtrace (libpipetrace.a / .so)
#   make demo       build, then run DualPipe (8 ranks, 20 microbatches) on the
#                   sim backend: schedule, trace.db, stats
#   make test       unit tests (cmocka) and end-to-end CLI tests
#   make test-asan  the same on a build with AddressSanitizer and UBSan
#   make bench      the speed figures the issues ask for
#   make gpu-check  on a machine with a GPU: build there, run every GPU test
#                   and bench_cuda (tests/gpu-check.sh; docs/backends.md)
#   make install PREFIX=/usr/local
#
# demo, test and bench first install the Debian packages they lack
# (mk/deps.sh). Optional features are probed by mk/configure.sh: NO_CUDA=1,
# NO_CUPTI=1, NO_NCCL=1, NO_NVTX=1, NO_MPI=1, NO_OPENBLAS=1 force one off; CUDA=1 (etc.)
# insists on it and fails loudly when it is missing.

BUILD ?= build
PREFIX ?= /usr/local
CC ?= cc
CUDA_HOME ?= /usr/local/cuda
CFLAGS ?= -O2 -g
WERROR ?= -Werror
PT_CFLAGS := -std=c11 -Wall -Wextra $(WERROR) -D_GNU_SOURCE -fPIC -pthread \
	-Ilibtrace/include -I$(BUILD) -I.
LIBS := -lsqlite3 -lyajl -lz -lpthread -lm

ifeq ($(V),1)
Q :=
say := @true
else
Q := @
say := @printf '  %-6s %s\n'
endif

SOVERSION := 0
VERSION := $(shell sed -n 's/^\#define PT_VERSION "\(.*\)"/\1/p' libtrace/include/pipetrace/trace.h)

all: $(BUILD)/pipetrace $(BUILD)/libpipetrace.a $(BUILD)/libpipetrace.so

# ----------------------------------------------------------- configuration
CONFIG_FLAGS := CC=$(CC) CUDA_HOME=$(CUDA_HOME) NO_CUDA=$(NO_CUDA) CUDA=$(CUDA) \
	NO_CUPTI=$(NO_CUPTI) CUPTI=$(CUPTI) NO_NCCL=$(NO_NCCL) NCCL=$(NCCL) \
	NO_NVTX=$(NO_NVTX) NVTX=$(NVTX) NO_MPI=$(NO_MPI) MPI=$(MPI) \
	NO_OPENBLAS=$(NO_OPENBLAS) OPENBLAS=$(OPENBLAS)

$(BUILD)/config.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CONFIG_FLAGS)' | cmp -s - $@ || echo '$(CONFIG_FLAGS)' > $@

# Probed again when the installed packages change (dpkg's status file), so a
# library that `make test` installs is found by the build that follows.
$(BUILD)/config.mk: mk/configure.sh $(BUILD)/config.flags $(wildcard /var/lib/dpkg/status)
	@BUILD=$(BUILD) $(CONFIG_FLAGS) sh mk/configure.sh

$(BUILD)/config.h: $(BUILD)/config.mk

# The targets that install packages first and then call make again probe
# nothing themselves: the inner make probes what is installed by then.
ifeq ($(filter deps test-deps test test-asan demo bench gpu-check clean distclean,$(MAKECMDGOALS)),)
-include $(BUILD)/config.mk
endif

# ----------------------------------------------------------------- sources
# A file named *_<feature>.c is built only when that feature is in.
FEATURES := cuda cupti nccl nvtx mpi openblas
gated = $(foreach f,$(FEATURES),$(if $(have_$(f)),,$(filter %_$(f).c,$(1))))
sources = $(filter-out $(call gated,$(wildcard $(1)/*.c)),$(wildcard $(1)/*.c))

LIBTRACE_SRC := $(call sources,libtrace)
APP_SRC := $(call sources,runner) $(call sources,importers) $(call sources,exporters) $(call sources,viewer) \
	$(filter-out cli/main.c,$(call sources,cli))
FEATURE_CFLAGS := $(sort $(foreach f,$(FEATURES),$(if $(have_$(f)),$(PT_$(shell echo $(f) | tr a-z A-Z)_CFLAGS))))
FEATURE_LIBS := $(foreach f,$(FEATURES),$(if $(have_$(f)),$(PT_$(shell echo $(f) | tr a-z A-Z)_LIBS)))

# The cuda backend's own kernels (runner/*_cuda.cu), compiled by nvcc for
# Turing, Ampere and Hopper, plus PTX for newer GPUs to JIT; -lstdc++ and
# -lcudart come with the cuda feature's libs.
CU_SRC := $(if $(have_cuda),$(wildcard runner/*_cuda.cu))
NVCC_GENCODE ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
	-gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCC_FLAGS ?= -O2 -std=c++17

LIBTRACE_OBJ := $(LIBTRACE_SRC:%.c=$(BUILD)/obj/%.o)
APP_OBJ := $(APP_SRC:%.c=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o) $(BUILD)/obj/viewer_assets.o

$(BUILD)/obj/%.o: %.c $(BUILD)/config.h
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(PT_CFLAGS) $(FEATURE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu $(BUILD)/config.h
	@mkdir -p $(dir $@)
	$(say) NVCC $<
	$(Q)$(NVCC) $(NVCC_FLAGS) $(NVCC_GENCODE) -Xcompiler -fPIC,-Wall -Ilibtrace/include -I$(BUILD) -I. \
		-MMD -MP -c $< -o $@

-include $(LIBTRACE_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(BUILD)/obj/cli/main.d

# The HTML report's page, script and style, compiled into the binary
# (mk/embed.c writes them as C arrays behind pt_asset()).
VIEWER_ASSETS := $(sort $(wildcard viewer/assets/*.html viewer/assets/*.css viewer/assets/*.js))

$(BUILD)/embed: mk/embed.c
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/viewer_assets.c: $(BUILD)/embed $(VIEWER_ASSETS)
	$(say) EMBED $@
	$(Q)$(BUILD)/embed $@ $(VIEWER_ASSETS)

$(BUILD)/obj/viewer_assets.o: $(BUILD)/viewer_assets.c
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(PT_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libpipetrace.a: $(LIBTRACE_OBJ)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(BUILD)/libpipetrace.so: $(LIBTRACE_OBJ)
	$(say) LD $@
	$(Q)$(CC) -shared -Wl,-soname,libpipetrace.so.$(SOVERSION) $(CFLAGS) -o $@ $^ $(LIBS) $(FEATURE_LIBS)

$(BUILD)/app.a: $(APP_OBJ)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(BUILD)/pipetrace: $(BUILD)/obj/cli/main.o $(BUILD)/app.a $(BUILD)/libpipetrace.a
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) -pthread -o $@ $^ $(LIBS) $(FEATURE_LIBS)

# ------------------------------------------------------------------ tests
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(wildcard tests/tools/*.h) $(BUILD)/app.a $(BUILD)/libpipetrace.a
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(PT_CFLAGS) $(FEATURE_CFLAGS) $(CFLAGS) -DPT_TEST_DATA='"$(CURDIR)/tests/data"' \
		-o $@ $< $(BUILD)/app.a $(BUILD)/libpipetrace.a $(LIBS) $(FEATURE_LIBS) -lcmocka

# Tools the tests drive (synthetic traces made through pt_rec).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

$(BUILD)/tools/%: tests/tools/%.c $(wildcard tests/tools/*.h) $(BUILD)/libpipetrace.a
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(PT_CFLAGS) $(FEATURE_CFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libpipetrace.a $(LIBS) $(FEATURE_LIBS)

deps:
	@sh mk/deps.sh build

# The browser tests' Chromium, Node.js and playwright-core: when they cannot
# be installed, those tests skip and say why.
test-deps:
	@sh mk/deps.sh test
	@sh mk/deps.sh browser || echo "make: the HTML report's browser tests will skip"
	@sh tests/browser/setup.sh

test: test-deps
	@$(MAKE) --no-print-directory all tests-build
	@BUILD=$(BUILD) sh tests/run.sh

tests-build: $(UNIT_BIN) $(TOOL_BIN)

# The same suite on a build with AddressSanitizer and UBSan (build-asan;
# without CUDA and MPI, whose runtimes the sanitizers do not follow): an
# invalid access, a leak or undefined behaviour fails the test it happens in.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
test-asan: test-deps
	@$(MAKE) --no-print-directory BUILD=build-asan NO_CUDA=1 NO_MPI=1 CFLAGS="$(ASAN_FLAGS)" all tests-build
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 BUILD=build-asan sh tests/run.sh

# ------------------------------------------------------------------- demo
DEMO_DIR ?= demo
demo: deps
	@$(MAKE) --no-print-directory all
	@sh mk/demo.sh $(BUILD)/pipetrace $(DEMO_DIR)

# ------------------------------------------------------------------ bench
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(wildcard tests/tools/*.h) $(BUILD)/app.a $(BUILD)/libpipetrace.a
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(PT_CFLAGS) $(FEATURE_CFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/app.a $(BUILD)/libpipetrace.a \
		$(LIBS) $(FEATURE_LIBS)

bench: test-deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# On a GPU machine: every check that needs the device, in one run, with its
# own build (build-gpu) and logs in gpu-out/.
gpu-check:
	@bash tests/gpu-check.sh

# ---------------------------------------------------------------- install
# The .pc file is written at install time, for the PREFIX installed to.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/pipetrace
	install -m 755 $(BUILD)/pipetrace $(DESTDIR)$(PREFIX)/bin/pipetrace
	install -m 644 $(BUILD)/libpipetrace.a $(DESTDIR)$(PREFIX)/lib/libpipetrace.a
	install -m 755 $(BUILD)/libpipetrace.so $(DESTDIR)$(PREFIX)/lib/libpipetrace.so.$(VERSION)
	ln -sf libpipetrace.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpipetrace.so.$(SOVERSION)
	ln -sf libpipetrace.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libpipetrace.so
	install -m 644 libtrace/include/pipetrace/*.h $(DESTDIR)$(PREFIX)/include/pipetrace/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
		-e 's|@LIBS@|$(FEATURE_LIBS)|g' mk/pipetrace.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/pipetrace.pc

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(DEMO_DIR)

FORCE:
.PHONY: all deps test-deps test test-asan tests-build demo bench gpu-check install clean distclean FORCE
.DELETE_ON_ERROR:
