# socksify -- plain Makefile: source lists by directory, pattern rules.
#
#   make                 build/socksify and build/libsocksify.so
#   make test            build and run every test (unit, launcher, integration)
#   make test SANITIZE=1 the same under AddressSanitizer + UBSan (build/asan/)
#   make demo            run curl through a real local SOCKS server
#   make bench           benchmarks against proxychains4 (tests/bench)
#   make fuzz            libFuzzer on every parser and the handshake (clang)
#   make install PREFIX=/usr/local DESTDIR=
#   make clean

VERSION   := 0.3.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib/socksify
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)

CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS  += -D_GNU_SOURCE -Ilibsocksify \
             -DSFY_VERSION='"$(VERSION)"' -DSFY_LIBDIR='"$(LIBDIR)"' \
             -DSFY_SYSCONFDIR='"$(SYSCONFDIR)"'
BASEFLAGS := -std=c11 -fPIC -fvisibility=hidden -pthread $(WARN)

ifeq ($(SANITIZE),1)
BUILD     := build/asan
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD     ?= build
SANFLAGS  :=
endif

ALL_CFLAGS := $(BASEFLAGS) $(SANFLAGS) $(CFLAGS)
LDLIBS_CORE := -lyaml -ldl -pthread

CORE_SRC   := $(filter-out libsocksify/hooks_%.c,$(wildcard libsocksify/*.c))
HOOK_SRC   := $(wildcard libsocksify/hooks_*.c)
LAUNCH_SRC := $(wildcard launcher/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
HOOK_OBJ   := $(HOOK_SRC:%.c=$(BUILD)/obj/%.o)
LAUNCH_OBJ := $(LAUNCH_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

LIB      := $(BUILD)/libsocksify.so
LAUNCHER := $(BUILD)/socksify
CORE_A   := $(BUILD)/libsfycore.a

.PHONY: all deps test test-deps unit demo bench fuzz fuzz-deps fuzz-run install clean FORCE
.DELETE_ON_ERROR:

all: deps $(LIB) $(LAUNCHER)

# Installs libyaml-dev when it is missing (as root; otherwise says how).
deps:
	@tests/deps.sh build

# Objects depend on the flags they were built with (PREFIX is compiled in),
# so `make install PREFIX=/usr` after a plain `make` rebuilds what it must.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_TEXT  := $(CC) $(CPPFLAGS) $(ALL_CFLAGS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(FLAGS_TEXT)' | cmp -s - $@ || echo '$(FLAGS_TEXT)' > $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_A): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Only the libc interposers are exported: everything is built hidden and the
# hooks are marked SFY_EXPORT; tests/integration/exports.sh checks it. The
# build-id tells a second copy of the same library apart (libsocksify/real.c).
$(LIB): $(HOOK_OBJ) $(CORE_A)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-z,defs -Wl,--as-needed -Wl,--build-id -o $@ \
	    $(HOOK_OBJ) $(CORE_A) $(LDFLAGS) $(LDLIBS_CORE)

$(LAUNCHER): $(LAUNCH_OBJ) $(CORE_A)
	$(CC) $(ALL_CFLAGS) -pie -o $@ $(LAUNCH_OBJ) $(CORE_A) $(LDFLAGS) $(LDLIBS_CORE)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(CORE_A) \
	    $(LDFLAGS) -lcmocka $(LDLIBS_CORE)

# The routing bench measures the matcher itself: linked with the core.
$(BUILD)/tests/routebench: tests/bench/routebench.c $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(CORE_A) \
	    $(LDFLAGS) $(LDLIBS_CORE)

$(BUILD)/tests/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LDFLAGS) -pthread

test-deps:
	@tests/deps.sh test

# SANITIZE=1 also needs the plain library (see tests/run.sh: programs that
# cannot run under an ASan runtime use it).
test: test-deps all $(UNIT_BIN) $(TOOL_BIN)
	$(if $(filter 1,$(SANITIZE)),$(MAKE) SANITIZE= all)
	BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh

unit: all $(UNIT_BIN)
	BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh unit

demo: test-deps all
	BUILD=$(BUILD) tests/demo.sh

bench: test-deps all $(TOOL_BIN) $(BUILD)/tests/routebench
	BUILD=$(BUILD) tests/bench/run.sh

# libFuzzer (clang): every tests/fuzz/fuzz_NAME.c against the core objects
# built with coverage + ASan + UBSan, each run FUZZ_SECONDS from its seed
# corpus (tests/fuzz/corpus/NAME, copied into build/fuzz/NAME.corpus, which
# keeps what it learns across runs); tests/fuzz/run.sh runs them and fails
# on any crash, sanitizer report, leak or hang once every harness has run.
FUZZ_SECONDS ?= 20
FUZZ_DIR   := build/fuzz
FUZZ_CC    := clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS := -std=c11 -g -O1 -pthread -Wall -Wextra $(FUZZ_SAN)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJ   := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_CORE  := $(FUZZ_DIR)/libsfycore.a

fuzz-deps:
	@tests/deps.sh fuzz

$(FUZZ_DIR)/obj/%.o: %.c $(FUZZ_DIR)/flags.stamp
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/flags.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS)' | cmp -s - $@ || \
	    echo '$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS)' > $@

$(FUZZ_CORE): $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_CORE) $(FUZZ_DIR)/flags.stamp
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_CORE) \
	    $(LDLIBS_CORE)

# Two steps: clang may only be there once fuzz-deps has run.
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run: $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(SYSCONFDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(LAUNCHER) $(DESTDIR)$(BINDIR)/socksify
	install -m 755 $(LIB) $(DESTDIR)$(LIBDIR)/libsocksify.so
	install -m 644 etc/socksify.yaml $(DESTDIR)$(SYSCONFDIR)/socksify.yaml
	install -m 644 launcher/socksify.1 $(DESTDIR)$(MANDIR)/man1/socksify.1
	install -m 644 etc/socksify.yaml.5 $(DESTDIR)$(MANDIR)/man5/socksify.yaml.5

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
