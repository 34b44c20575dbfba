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

# LAPACKE and OpenBLAS, from pkg-config (Debian's multiarch paths when it
# is missing).  The one place these flags are written: the project's own
# objects, and every trainer `ibc build` compiles, use them
# (build/ibc_flags.h; `ibc build --print-cflags` / `--print-libs`).
BLAS_CFLAGS := $(shell pkg-config --cflags lapacke openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu)
BLAS_LIBS   := $(shell pkg-config --libs lapacke openblas 2>/dev/null || echo -llapacke -lopenblas)
# A trainer: optimised for the machine it is built on (IBC_CFLAGS in the
# environment of `ibc build` adds flags after these, e.g. -march=x86-64-v3).
# -ffp-contract=off: no a * b + c fused into one rounding unless the source
# asks for an FMA, so that results follow the source's operations whatever
# the compiler (gcc in ISO C mode already does not fuse; clang fuses by
# default, which made the scalar exp and its four-lane form differ in the
# last bit under clang -march=x86-64-v3) and whatever the instruction set.
FP_CFLAGS := -ffp-contract=off
TRAINER_CFLAGS := -std=c11 -O2 -march=native $(FP_CFLAGS) -Wall -Wextra -D_POSIX_C_SOURCE=200809L $(BLAS_CFLAGS)
TRAINER_LIBS   := $(BLAS_LIBS) -lm
export BLAS_CFLAGS BLAS_LIBS   # for scripts/fuzz*.sh, which build the compiler's sources their own way

CFLAGS  ?= -O2 -g -gdwarf-4
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(FP_CFLAGS) $(WARN) $(CFLAGS) \
              -Icompiler -Iruntime -Ibuild $(BLAS_CFLAGS)
LIBS    := -lgmp $(BLAS_LIBS) -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# compiler/sweep_mpi.c is bin/ibc-sweep-mpi's main, built with mpicc (below).
COMPILER_SRC := $(sort $(filter-out compiler/sweep_mpi.c,$(wildcard compiler/*.c)))
RUNTIME_SRC  := $(sort $(wildcard runtime/*.c))
GRAMMAR_C    := build/ibs.tab.c build/lex.yy.c
HEADERS      := $(wildcard compiler/*.h runtime/*.h runtime/*.def) build/ibs.tab.h build/lex.yy.h

# The compiler reads dense operator files with the runtime's reader, the
# one trainers use on the same files.
COMPILER_OBJ := $(COMPILER_SRC:%.c=build/%.o) build/ibs.tab.o build/lex.yy.o build/runtime/read.o
LIB_OBJ      := $(filter-out build/compiler/main.o,$(COMPILER_OBJ))
RUNTIME_OBJ  := $(RUNTIME_SRC:%.c=build/%.o)

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
ASAN_BIN  := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: FORCE paper bench bench-sizes bench-fixed sweep-speedup lr-auto all deps check demo unit unit-asan diag-tests derivations derivations-check generated generated-check e2e clean sym-oracle \
        fuzz fuzz-replay faults torch-tests
all: bin/ibc build/libibrt.a

# The MPI sweep (compiler/sweep_mpi.c), only where OpenMPI's mpicc is found
# (scripts/install-deps.sh installs it); without it everything else builds.
MPICC := $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
all: bin/ibc-sweep-mpi
endif

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
# The trainer build flags, for compiler/main.c; rewritten only when they
# change, so that a change rebuilds ibc.
build/ibc_flags.h: FORCE
	@mkdir -p build
	@printf '#define IBC_TRAINER_CFLAGS "%s"\n#define IBC_TRAINER_LIBS "%s"\n' '$(TRAINER_CFLAGS)' '$(TRAINER_LIBS)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:
build/compiler/main.o build/asan/compiler/main.o build/tests/test_emit build/asan/tests/test_emit: build/ibc_flags.h

build/compiler/%.o: compiler/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/runtime/%.o: runtime/%.c $(wildcard runtime/*.h runtime/*.def)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

bin/ibc: $(COMPILER_OBJ)
	@mkdir -p bin
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

bin/ibc-sweep-mpi: compiler/sweep_mpi.c $(LIB_OBJ) $(HEADERS)
	@mkdir -p bin
	$(MPICC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) $(LIBS)

build/libibrt.a: $(RUNTIME_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---------------------------------------------------------------- tests
build/tests/%: tests/unit/%.c $(LIB_OBJ) build/libibrt.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) build/libibrt.a -lcriterion $(LIBS)

# The RNG's and the kernels' tests are header code specialised by the
# instruction set it is compiled for: each is built once per x86-64 level
# (x86-64: the portable loops; x86-64-v3: AVX2 and FMA; x86-64-v4: AVX-512),
# and each build runs where the CPU has that level (otherwise it says it was
# skipped).  The plain builds in UNIT_BIN are the portable ones.  The
# library objects they link are built once, for no particular level.
ISA_TESTS  := test_rt_rng test_rt_kernels
ISA_LEVELS := x86-64-v3 x86-64-v4
ISA_BIN    := $(foreach l,$(ISA_LEVELS),$(ISA_TESTS:%=build/tests/$(l)/%))
build/tests/x86-64-v3/%: tests/unit/%.c $(LIB_OBJ) build/libibrt.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -march=x86-64-v3 -o $@ $< $(LIB_OBJ) build/libibrt.a -lcriterion $(LIBS)
build/tests/x86-64-v4/%: tests/unit/%.c $(LIB_OBJ) build/libibrt.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -march=x86-64-v4 -o $@ $< $(LIB_OBJ) build/libibrt.a -lcriterion $(LIBS)

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

# tests/lib-symbols.sh: every external symbol of libibrt.a starts with
# ibrt_ (the library is linked into researchers' own programs).
unit: $(UNIT_BIN) $(ISA_BIN) build/libibrt.a
	@sh tests/lib-symbols.sh build/libibrt.a
	@set -e; for t in $(UNIT_BIN); do $$t --jobs=2 --short-filename; done
	@set -e; for l in $(ISA_LEVELS); do \
	  if sh scripts/cpu-level.sh $$l; then \
	    for t in $(ISA_TESTS); do echo "$$t at $$l:"; build/tests/$$l/$$t --jobs=2 --short-filename; done; \
	  else echo "unit: skipped $(ISA_TESTS) at $$l: this CPU lacks it (they are built, not run)"; fi; done

unit-asan: $(ASAN_BIN)
	@set -e; for t in $(ASAN_BIN); do \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t --jobs=1 --short-filename; done

# Each tests/diag/NAME.ibs has NAME.expected: the exact stderr of
# `ibc check` (and exit status 1), run under the sanitizer build.
diag-tests: bin/ibc build/asan/ibc
	@sh tests/run-diag-tests.sh build/asan/ibc

# docs/derivations.md: the text derivation of every spec, regenerated by
# `make derivations`; `make check` fails when the committed file differs.
SPECS := $(sort $(wildcard specs/*.ibs))
build/derivations.md: bin/ibc $(SPECS) scripts/derivations.sh
	@sh scripts/derivations.sh bin/ibc $(SPECS) > $@
derivations: build/derivations.md
	cp build/derivations.md docs/derivations.md
derivations-check: build/derivations.md
	@cmp -s build/derivations.md docs/derivations.md || \
	  { echo "docs/derivations.md is out of date: run 'make derivations'"; diff docs/derivations.md build/derivations.md | head -20; exit 1; }
	@echo "derivations: docs/derivations.md is up to date"

# generated/NAME.c: the emitted trainer of every spec, committed so that
# readers see the code; `make check` fails when re-emitting differs.
generated: bin/ibc
	@for s in $(SPECS); do bin/ibc emit $$s -o generated/$$(basename $$s .ibs).c || exit 1; done
generated-check: bin/ibc
	@mkdir -p build/generated
	@set -e; for s in $(SPECS); do n=$$(basename $$s .ibs); bin/ibc emit $$s -o build/generated/$$n.c; \
	  cmp -s build/generated/$$n.c generated/$$n.c || { echo "generated/$$n.c is out of date: run 'make generated'"; exit 1; }; done
	@echo "generated: every trainer in generated/ matches its spec"

# Every spec builds (-Wall -Wextra -Werror on the emitted C) and trains a
# shortened run; the trainer's checks must pass.  Then the data-file faults
# of a trainer at run time (tests/faults/data-files.sh), and `ibc sweep`
# with its MPI form (tests/sweep.sh).
e2e: all build/asan/libibrt.a build/asan/ibc
	@sh tests/e2e.sh
	@sh tests/faults/data-files.sh
	@sh tests/sweep.sh

# Faults seen only in whole processes (tests/faults/run.sh): the `ibc run`
# cache and its spec input, two trainers on one output directory,
# repeated and process-group signals, the file size limit, a full disk.
faults: all
	@sh tests/faults/run.sh

# The derivation against an independent one (tests/oracle/sym_oracle.py:
# Debian's python3-sympy, exact arithmetic, formulas ibc does not use) on
# 240 random monomial and chain specs, each also with its declarations
# shuffled.
sym-oracle: bin/ibc
	@/usr/bin/python3 tests/oracle/sym_oracle.py bin/ibc 240

# The PyTorch export (ibc emit --target torch) against the C trainer of
# every spec in specs/ and tests/emit/: predictor, gradients, 100 SGD
# steps and snapshots (tests/torch/run.sh; Debian's python3-torch, skipped
# with a message when it is not installed).
torch-tests: all
	@sh tests/torch/run.sh

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit unit-asan diag-tests fuzz-replay derivations-check generated-check sym-oracle e2e faults torch-tests
	@bin/ibc check specs/*.ibs

# The main job: the E4 design spec checked and derived (requested penalty ->
# factorisation -> generators -> slice -> Gram -> balance -> bias).
demo: deps
	@$(MAKE) --no-print-directory all
	bin/ibc check specs/spectral_sparse.ibs
	bin/ibc derive specs/spectral_sparse.ibs
	bin/ibc run specs/spectral_sparse.ibs --out results/spectral_sparse

# The paper's five experiments at its settings -> docs/results.md and
# docs/figures/ (several minutes; SEEDS=K to change the number of seeds).
paper: all
	@sh scripts/paper.sh

# libFuzzer targets of tests/fuzz/ (front end, CSV and .npy readers, data
# generator arguments, a trainer's flags), each
# run FUZZ_SECONDS one after the other (clang, installed on demand); never
# part of `make check`, which replays their regression inputs and seeds.
FUZZ_SECONDS ?= 60
fuzz:
	@sh scripts/install-deps.sh fuzz
	@sh scripts/fuzz.sh $(FUZZ_SECONDS)

# The fuzz regression inputs and seed corpora under gcc ASan + UBSan (~10 s).
fuzz-replay:
	@sh scripts/fuzz-replay.sh

# --jobs 1 against --jobs 2 on a grid of 20 runs (docs/sweeps.md; never
# part of `make check`: other processes on the machine change the answer).
sweep-speedup: all
	@sh scripts/sweep-speedup.sh

# lr = auto against a full-run grid of learning rates on the paper's five
# experiments and tests/sweep/laplacian.ibs (docs/sweeps.md; minutes).
lr-auto: all
	@sh scripts/lr-auto.sh

# Per-step cost against the PyTorch reference (never part of `make check`).
bench: all
	@sh scripts/install-deps.sh bench
	@sh bench/run.sh

# How the trainers scale with the problem size, against this machine's
# one-thread BLAS rate (several minutes; SIZES_MAX=200 for a short run).
bench-sizes: all
	@sh bench/sizes.sh

# Each spec's fixed costs against a run at its own step count (a minute or
# more; FRACTION=0.1 runs a tenth of the steps and extrapolates).
bench-fixed: all
	@sh bench/fixed.sh

clean:
	rm -rf build bin
