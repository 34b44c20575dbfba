# ibc: a symbolic-numeric inverse-design compiler.
#
#   make          bin/ibc and build/libibrt.a
#   make check    every test (installs dependencies first)
#   make demo     the main job: specs/spectral_sparse.ibs end to end
#
# Layout: grammar/ (flex + bison), compiler/ (one file per phase),
# runtime/ (libibrt, used by generated trainers), tests/, specs/, generated/.

CC      ?= cc
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) \
              -Icompiler -Iruntime -Ibuild -I/usr/include/x86_64-linux-gnu
LIBS    := -lgmp -llapacke -lopenblas -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

COMPILER_SRC := $(sort $(wildcard compiler/*.c))
RUNTIME_SRC  := $(sort $(wildcard runtime/*.c))
GRAMMAR_C    := build/ibs.tab.c build/lex.yy.c
HEADERS      := $(wildcard compiler/*.h runtime/*.h runtime/*.def) build/ibs.tab.h build/lex.yy.h

COMPILER_OBJ := $(COMPILER_SRC:%.c=build/%.o) build/ibs.tab.o build/lex.yy.o
LIB_OBJ      := $(filter-out build/compiler/main.o,$(COMPILER_OBJ))
RUNTIME_OBJ  := $(RUNTIME_SRC:%.c=build/%.o)

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
ASAN_BIN  := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: all deps check demo unit unit-asan diag-tests clean
all: bin/ibc build/libibrt.a

deps:
	@sh scripts/install-deps.sh

# ---------------------------------------------------------------- grammar
build/ibs.tab.c build/ibs.tab.h &: grammar/ibs.y
	@mkdir -p build
	bison -Wall -Werror --defines=build/ibs.tab.h -o build/ibs.tab.c $<

build/lex.yy.c build/lex.yy.h &: grammar/ibs.l build/ibs.tab.h
	@mkdir -p build
	flex --header-file=build/lex.yy.h -o build/lex.yy.c $<

# Generated scanner/parser code is not ours to warn about in every detail.
GEN_CFLAGS := $(filter-out -Wmissing-prototypes -Wshadow,$(ALL_CFLAGS)) -Wno-unused-function -Wno-sign-compare

build/ibs.tab.o: build/ibs.tab.c $(HEADERS)
	$(CC) $(GEN_CFLAGS) -c $< -o $@
build/lex.yy.o: build/lex.yy.c $(HEADERS)
	$(CC) $(GEN_CFLAGS) -c $< -o $@

# ---------------------------------------------------------------- compiler
build/compiler/%.o: compiler/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/runtime/%.o: runtime/%.c $(wildcard runtime/*.h runtime/*.def)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

bin/ibc: $(COMPILER_OBJ)
	@mkdir -p bin
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

build/libibrt.a: $(RUNTIME_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---------------------------------------------------------------- tests
build/tests/%: tests/unit/%.c $(LIB_OBJ) build/libibrt.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) build/libibrt.a -lcriterion $(LIBS)

# Sanitizer build: every object rebuilt with ASan + UBSan.
ASAN_LIB_OBJ := $(LIB_OBJ:build/%=build/asan/%)
ASAN_RT_OBJ  := $(RUNTIME_OBJ:build/%=build/asan/%)
build/asan/%.o: build/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CFLAGS) $(SAN) -c $< -o $@
build/asan/compiler/%.o: compiler/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@
build/asan/runtime/%.o: runtime/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@
build/asan/libibrt.a: $(ASAN_RT_OBJ)
	@rm -f $@
	ar rcs $@ $^
build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJ) build/asan/libibrt.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $< $(ASAN_LIB_OBJ) build/asan/libibrt.a -lcriterion $(LIBS)
build/asan/ibc: $(ASAN_LIB_OBJ) build/asan/compiler/main.o
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(LIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do $$t --jobs=2 --short-filename; done

unit-asan: $(ASAN_BIN)
	@set -e; for t in $(ASAN_BIN); do \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t --jobs=1 --short-filename; done

# Each tests/diag/NAME.ibs has NAME.expected: the exact stderr of
# `ibc check` (and exit status 1), run under the sanitizer build.
diag-tests: bin/ibc build/asan/ibc
	@sh tests/run-diag-tests.sh build/asan/ibc

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit unit-asan diag-tests
	@bin/ibc check specs/*.ibs

demo: deps
	@$(MAKE) --no-print-directory all
	bin/ibc check specs/spectral_sparse.ibs

clean:
	rm -rf build bin
