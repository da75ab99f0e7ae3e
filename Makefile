# taskfarm: one plain Makefile. Settings first; then one object list per layer.

# ---- settings ----------------------------------------------------------------
PREFIX   ?= /usr/local
CC       := mpicc
CORE_CC  ?= gcc
OPT      ?= -O2 -g
STD      := -std=c11 -D_POSIX_C_SOURCE=200809L
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wwrite-strings -Wundef
ifeq ($(CI),true)
WARN     += -Werror
endif
SAN      ?=
CFLAGS   := $(STD) $(OPT) $(WARN) $(SAN) -fPIC
CPPFLAGS := -Iinclude -Isrc -MMD -MP
# HDF5 (src/ckpt) comes from pkg-config, expanded only when used, so that
# `make deps` can install it first.
HDF5_CFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags hdf5-openmpi))
HDF5_LIBS   = $(shell pkg-config --libs hdf5-openmpi)
LDLIBS    = -lhwloc $(HDF5_LIBS) -lpthread
# jansson parses trace.json for `taskfarm report` (src/cli/timeline.c): the
# command links it, the library does not.
JANSSON_CFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags jansson))
JANSSON_LIBS   = $(shell pkg-config --libs jansson)
SOVER    := 0
VERSION  := 0.1.0
BUILD    := build
NP_LIST  ?= 1 2 4
# Open MPI refuses root unless told; tests only, never the library.
ifeq ($(shell id -u),0)
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
endif

# ---- layers (see docs/architecture.md) -------------------------------------
CORE_SRC := $(wildcard src/core/*.c)   # pure C11: no MPI, hwloc, HDF5, I/O
UTIL_SRC := $(wildcard src/util/*.c)   # logger
EXEC_SRC := $(wildcard src/exec/*.c)   # running tasks on a rank
NET_SRC  := $(wildcard src/net/*.c)    # MPI: scheduler and worker loops
PLACE_SRC:= $(wildcard src/place/*.c)  # hwloc: topology, placement
CKPT_SRC := $(wildcard src/ckpt/*.c)   # HDF5: snapshots, journal, load
CLI_SRC  := $(wildcard src/cli/*.c)    # the taskfarm command
LIB_SRC  := $(CORE_SRC) $(UTIL_SRC) $(EXEC_SRC) $(NET_SRC) $(PLACE_SRC) $(CKPT_SRC)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)

APPS       := $(patsubst apps/%.c,bin/%,$(wildcard apps/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
MPI_TESTS  := $(patsubst tests/mpi/%.c,$(BUILD)/tests/%,$(wildcard tests/mpi/test_*.c))
BENCHES    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all lib apps tests check check-core check-exec check-mpi check-cli check-sim \
        check-slurm check-cluster check-slurm-multi check-place check-apps check-docs check-ckpt check-faults-quick check-faults check-long \
        bench \
        deps install \
        clean asan ubsan asan-ckpt ubsan-ckpt check-fuzz fuzz fuzz-cov fuzz-seeds \
        format demo
all: lib bin/taskfarm bin/taskfarm-sim apps tests $(BENCHES)

lib: lib/libtaskfarm.a lib/libtaskfarm.so lib/taskfarm.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(OBJ_CPPFLAGS) $(CFLAGS) -c $< -o $@
# The library exports only what include/ marks TF_API (nm -D shows them).
$(LIB_OBJ): OBJ_CPPFLAGS = -fvisibility=hidden
# Only src/ckpt sees hdf5.h.
$(CKPT_SRC:%.c=$(BUILD)/%.o): OBJ_CPPFLAGS = -fvisibility=hidden $(HDF5_CFLAGS)

# The dependency rule, checked by the compiler: tests/poison holds an mpi.h,
# hdf5.h and hwloc.h that stop the build with #error. A layer compiled with
# them first on its include path cannot include the real ones.
POISON     := -Itests/poison
POISON_ALL := -Itests/poison -Itests/poison/hwloc

# The command uses the library as any application would: it is compiled by
# the plain C compiler (no mpi.h), with include/ and only core/, exec/ and
# place/ of src/ on its path (a folder of links), never net/, ckpt/ or util/.
CLI_INC := $(BUILD)/cli-inc
$(CLI_INC):
	@mkdir -p $@
	for d in core exec place; do ln -sfn ../../src/$$d $@/$$d; done
$(CLI_OBJ): $(BUILD)/src/cli/%.o: src/cli/%.c | $(CLI_INC)
	@mkdir -p $(@D)
	$(CORE_CC) $(POISON_ALL) -Iinclude -I$(CLI_INC) -iquote src/cli -MMD -MP \
	    $(OBJ_CPPFLAGS) $(STD) $(OPT) $(WARN) $(SAN) -c $< -o $@
# Only the report's trace reader sees jansson.h.
$(BUILD)/src/cli/timeline.o: OBJ_CPPFLAGS = $(JANSSON_CFLAGS)

lib/libtaskfarm.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

lib/libtaskfarm.so.$(VERSION): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libtaskfarm.so.$(SOVER) -o $@ $^ $(LDLIBS)

lib/libtaskfarm.so: lib/libtaskfarm.so.$(VERSION)
	ln -sf libtaskfarm.so.$(VERSION) lib/libtaskfarm.so.$(SOVER)
	ln -sf libtaskfarm.so.$(VERSION) $@

lib/taskfarm.pc: Makefile
	@mkdir -p $(@D)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: taskfarm' \
	  'Description: MPI task farm runtime with DAG scheduling' \
	  'Version: $(VERSION)' 'Requires.private: ompi hwloc hdf5-openmpi' \
	  'Libs: -L$${libdir} -ltaskfarm' 'Libs.private: -lpthread' \
	  'Cflags: -I$${includedir}' > $@

bin/taskfarm: $(CLI_OBJ) lib/libtaskfarm.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) lib/libtaskfarm.a $(LDLIBS) $(JANSSON_LIBS) -lm

apps: $(APPS)
bin/%: apps/%.c lib/libtaskfarm.a
	@mkdir -p $(@D) $(BUILD)/apps
	$(CC) $(CPPFLAGS) $(APP_CPPFLAGS) -MF $(BUILD)/apps/$*.d $(CFLAGS) -o $@ $< lib/libtaskfarm.a $(APP_LIBS) $(LDLIBS) -lm

# Per-app libraries: apps may include LAPACKE, OpenBLAS or HDF5 directly
# (the one-folder-per-library rule binds src/ only). OpenBLAS's own cblas.h
# declares openblas_set_num_threads; -isystem keeps -Werror to our code. Expanded only when an app is built,
# so that `make deps` can install the packages first.
bin/cholesky: APP_CPPFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags openblas))
bin/cholesky: APP_LIBS = -llapacke $(shell pkg-config --libs openblas)
bin/sweep: APP_CPPFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags hdf5-openmpi))
bin/sweep: APP_LIBS = $(shell pkg-config --libs hdf5-openmpi)

# Each layer's test programs, defined before `tests:`: make expands a
# rule's prerequisites as it reads the rule.
EXEC_TESTS := $(patsubst tests/exec/%.c,$(BUILD)/tests/exec_%,$(wildcard tests/exec/test_*.c))
PLACE_TESTS := $(patsubst tests/place/%.c,$(BUILD)/tests/place_%,$(wildcard tests/place/test_*.c))
CKPT_TESTS := $(patsubst tests/ckpt/%.c,$(BUILD)/tests/ckpt_%,$(wildcard tests/ckpt/test_*.c))
tests: $(UNIT_TESTS) $(EXEC_TESTS) $(MPI_TESTS) $(PLACE_TESTS) $(CKPT_TESTS) \
       $(BUILD)/tests/mpi_hello

# Unit tests link only the pure core, compiled by a plain C compiler with
# the poisoned headers: if the core ever includes mpi.h, hwloc.h or hdf5.h,
# this fails.
CORE_CPPFLAGS := $(POISON_ALL) -Iinclude -Isrc -iquote src/core
# Allocation-failure tests: the core's malloc/calloc/realloc go through the
# test's wrappers (the GNU linker's --wrap), which fail them one by one.
$(BUILD)/tests/test_oom: tests/unit/test_oom.c $(CORE_SRC) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CORE_CC) $(CORE_CPPFLAGS) $(STD) $(OPT) $(WARN) $(SAN) -o $@ $< $(CORE_SRC) -lcunit \
	    -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc

$(BUILD)/tests/test_%: tests/unit/test_%.c $(CORE_SRC) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CORE_CC) $(CORE_CPPFLAGS) $(STD) $(OPT) $(WARN) $(SAN) -o $@ $< $(CORE_SRC) -lcunit

# The exec layer's tests: real child processes, no MPI.
$(BUILD)/tests/exec_%: tests/exec/%.c src/exec/proc.c src/core/errors.c
	@mkdir -p $(@D)
	$(CORE_CC) $(CORE_CPPFLAGS) $(STD) $(OPT) $(WARN) $(SAN) -o $@ $< src/exec/proc.c src/core/errors.c -lcunit -lpthread

# The task runner's hand-off with its real task threads, no MPI.
$(BUILD)/tests/exec_test_pool: tests/exec/test_pool.c src/exec/pool.c $(CORE_SRC)
	@mkdir -p $(@D)
	$(CORE_CC) $(CORE_CPPFLAGS) $(STD) $(OPT) $(WARN) $(SAN) -o $@ $< src/exec/pool.c $(CORE_SRC) -lcunit -lpthread

# Placement tests: src/place with hwloc (synthetic and XML topologies), no
# MPI include path, so src/place cannot include mpi.h either.
$(BUILD)/tests/place_%: tests/place/%.c $(PLACE_SRC) $(CORE_SRC) $(wildcard src/place/*.h)
	@mkdir -p $(@D)
	$(CORE_CC) $(POISON) -Iinclude -Isrc -iquote src/core $(STD) $(OPT) $(WARN) $(SAN) -o $@ $< $(PLACE_SRC) $(CORE_SRC) -lhwloc -lcunit -lpthread

# Checkpoint tests: real files and HDF5 (the test writes foreign and hostile
# files too). The library's allocations go through the test's wrappers (the
# GNU linker's --wrap), which fail them one by one.
CKPT_WRAP  := -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
# They link the objects they test, not lib/, so that a sanitizer build
# (BUILD=build-asan) leaves the library alone.
CKPT_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(CKPT_SRC) $(UTIL_SRC) $(CORE_SRC))
$(BUILD)/tests/ckpt_%: tests/ckpt/%.c $(CKPT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -iquote src/core $(HDF5_CFLAGS) $(CFLAGS) -o $@ $< $(CKPT_OBJ) $(HDF5_LIBS) -lpthread -lcunit $(CKPT_WRAP)

# MPI tests: each links the harness they share (tests/mpi/harness.h).
MPI_HARNESS := $(BUILD)/tests/mpi/harness.o
# Kept, not removed as an intermediate: every MPI test links it.
.SECONDARY: $(MPI_HARNESS)
$(BUILD)/tests/%: tests/mpi/%.c $(MPI_HARNESS) lib/libtaskfarm.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(MPI_HARNESS) lib/libtaskfarm.a $(LDLIBS) -lm

# The simulator's workloads run for real (docs/scaling.md): its workload.c too.
$(BUILD)/bench/simreal: bench/simreal.c src/sim/workload.c lib/libtaskfarm.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -iquote src/core $(CFLAGS) -o $@ bench/simreal.c src/sim/workload.c lib/libtaskfarm.a $(LDLIBS) -lm

$(BUILD)/bench/%: bench/%.c lib/libtaskfarm.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< lib/libtaskfarm.a $(LDLIBS) -lm

# The simulator drives the pure core with a virtual clock: plain gcc, no MPI.
SIM_SRC := $(wildcard src/sim/*.c)
bin/taskfarm-sim: $(SIM_SRC) $(CORE_SRC) $(wildcard src/sim/*.h src/core/*.h)
	@mkdir -p $(@D)
	$(CORE_CC) $(CORE_CPPFLAGS) -iquote src/sim $(STD) $(OPT) $(WARN) $(SAN) -o $@ $(SIM_SRC) $(CORE_SRC) -lm

check-sim: bin/taskfarm-sim
	bash tests/sim/run.sh bin

check-core: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done

check-exec: $(EXEC_TESTS)
	@for t in $(EXEC_TESTS); do echo "== $$t"; timeout 300 $$t || exit 1; done

check-place: $(PLACE_TESTS) bin/taskfarm
	@for t in $(PLACE_TESTS); do echo "== $$t"; timeout 300 $$t tests/data/topologies || exit 1; done
	bash tests/place/cli.sh bin

check-mpi: $(MPI_TESTS)
	bash tests/mpi/run.sh $(BUILD)/tests

check: all
	$(MAKE) check-core
	$(MAKE) check-fuzz
	$(MAKE) check-exec
	$(MAKE) check-mpi
	$(MAKE) check-cli
	$(MAKE) check-faults-quick
	$(MAKE) check-ckpt
	$(MAKE) check-sim
	$(MAKE) check-slurm
	$(MAKE) check-cluster
	$(MAKE) check-place
	$(MAKE) check-apps
	$(MAKE) check-docs

check-ckpt: $(CKPT_TESTS)
	@for t in $(CKPT_TESTS); do echo "== $$t"; timeout 300 $$t || exit 1; done

check-apps: $(APPS)
	bash tests/apps/run.sh bin

# docs/api.md's example programs and link lines, built and run as the page
# prints them; its `make install PREFIX=...` installs into a temporary
# directory (seconds when lib and bin/taskfarm are built).
check-docs: lib bin/taskfarm
	timeout 900 bash tests/docs/examples.sh
	timeout 300 bash tests/docs/install.sh

# An MPI program that tasks run, singleton or under their own mpirun.
$(BUILD)/tests/mpi_hello: tests/cli/mpi_hello.c
	@mkdir -p $(@D)
	$(CC) $(STD) $(OPT) $(WARN) -o $@ $<

check-cli: bin/taskfarm $(BUILD)/tests/test_trace $(BUILD)/tests/mpi_hello
	bash tests/cli/run.sh bin
	bash tests/cli/conventions.sh bin
	bash tests/cli/farm.sh bin $(BUILD)/tests
	bash tests/cli/output.sh bin
	bash tests/cli/status.sh bin
	timeout 1200 bash tests/cli/args.sh bin
	timeout 600 bash tests/cli/add.sh bin
	timeout 300 bash tests/cli/trace.sh bin $(BUILD)/tests
	timeout 600 bash tests/cli/stop.sh bin
	timeout 300 bash tests/cli/walltime.sh bin
	timeout 600 bash tests/cli/deps.sh bin

# Fault injection (tests/faults): kill -9 of workers, rank 0 and whole jobs
# under real mpirun, resume, orphans; results compared with a fault-free run.
# The quick set is part of `check` (about 2 minutes); the kill soak repeats
# random kills of every kind (FAULT_SOAK=N iterations, default 24; about 2
# minutes) and is part of check-long.
check-faults-quick: bin/taskfarm
	timeout 900 bash tests/faults/run.sh bin
	timeout 600 bash tests/faults/takeover.sh bin

check-faults: bin/taskfarm
	timeout 3600 bash tests/faults/soak.sh bin

# The long runs kept out of `check`: 100,000 shell tasks through the CLI
# (about 5 minutes here) and the fault soak.
check-long: bin/taskfarm
	FARM_MANY=100000 bash tests/cli/farm.sh bin
	$(MAKE) check-faults

# A real one-node Slurm (munged, slurmctld, slurmd) in a temporary directory,
# running jobscripts/* through sbatch; about 3 minutes, needs root.
check-slurm: bin/taskfarm $(BUILD)/tests/mpi_hello
	timeout 900 bash tests/slurm/run.sh bin

# An emulated cluster (tests/cluster): hosts as network namespaces with
# their own hostnames and /tmp, Open MPI over TCP between them; farms, an
# app, steals, node-local /tmp and lost nodes. About a minute; needs root.
check-cluster: bin/taskfarm $(APPS)
	timeout 900 bash tests/cluster/run.sh bin
	$(MAKE) check-slurm-multi

# Slurm on four emulated hosts: sbatch -N 3 with srun --mpi=pmix; a node
# lost mid-job, requeued, resumed (about 80 s; needs root).
check-slurm-multi: bin/taskfarm
	timeout 600 bash tests/slurm/multinode.sh bin

bench: all
	bash bench/run.sh

# Sanitizer builds of the unit tests and of the checkpoint loader's tests
# (hostile files, allocation failures), each in its own build tree;
# asan-ckpt and ubsan-ckpt run the latter alone.
SAN_ASAN  := -fsanitize=address,undefined -fno-omit-frame-pointer
SAN_UBSAN := -fsanitize=undefined -fno-sanitize-recover=all
asan:
	$(MAKE) BUILD=build-asan SAN='$(SAN_ASAN)' check-core check-ckpt
ubsan:
	$(MAKE) BUILD=build-ubsan SAN='$(SAN_UBSAN)' check-core check-ckpt
asan-ckpt:
	$(MAKE) BUILD=build-asan SAN='$(SAN_ASAN)' check-ckpt
ubsan-ckpt:
	$(MAKE) BUILD=build-ubsan SAN='$(SAN_UBSAN)' check-ckpt

# ---- fuzzing (tests/fuzz, docs/fuzzing.md) ----------------------------------
# libFuzzer harnesses built by clang with ASan and UBSan (HDF5 and MPI are
# Debian's, uninstrumented): the task-file parser, the wire decoders,
# journals as bytes, snapshots as bytes, and snapshots edited through the
# HDF5 API from a recipe. check-fuzz (part of check) runs each a fixed
# number of times from its committed seed corpus (tests/fuzz/corpus/NAME),
# under a minute in all on 2 cores, and throws away what it finds; fuzz runs each for FUZZ_SECONDS, keeping
# what it finds in build/fuzz/corpus-NAME. Crashes go to
# build/fuzz/artifacts/. tests/fuzz/run.sh has the per-harness options.
# fuzz-cov reports the line coverage of the corpora (llvm-cov); fuzz-seeds
# writes the checkpoint seeds again.
FUZZ_CC      ?= clang-14
FUZZ_FLAGS   := $(STD) -g -O1 -fno-omit-frame-pointer $(WARN) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CORE    := taskfile wire
FUZZ_NAMES   := $(FUZZ_CORE) journal snapshot snapedit
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_CKPT    := $(CKPT_SRC) $(UTIL_SRC) $(CORE_SRC)
FUZZ_SECONDS ?= 300
# An input of a few bytes (@array=1-99999999 x) may ask for the most tasks
# a file holds; the harness's memory limit wants a smaller most.
FUZZ_TASKS   := -DTF_TASKFILE_MAX_TASKS=100000u
LLVM_PROFDATA ?= llvm-profdata-14
LLVM_COV      ?= llvm-cov-14

# The core's harnesses (the task-file parser, the wire decoders) link only it.
$(FUZZ_CORE:%=$(BUILD)/fuzz/fuzz_%): $(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CORE_SRC) $(wildcard src/core/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CORE_CPPFLAGS) $(FUZZ_FLAGS) $(FUZZ_COV) $(FUZZ_TASKS) -o $@ $< $(CORE_SRC)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_ckpt.h tests/ckpt/h5edit.h $(FUZZ_CKPT) $(wildcard src/ckpt/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -Iinclude -Isrc $(HDF5_CFLAGS) $(FUZZ_FLAGS) $(FUZZ_COV) -o $@ $< $(FUZZ_CKPT) $(HDF5_LIBS) -lpthread
$(BUILD)/fuzz/seeds: tests/fuzz/seeds.c tests/ckpt/h5edit.h $(CKPT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(HDF5_CFLAGS) $(CFLAGS) -o $@ $< $(CKPT_OBJ) $(HDF5_LIBS) -lpthread

check-fuzz: $(FUZZ_BINS)
	bash tests/fuzz/run.sh $(BUILD)/fuzz check

fuzz: $(FUZZ_BINS)
	bash tests/fuzz/run.sh $(BUILD)/fuzz long $(FUZZ_SECONDS)

# Line coverage of the parser and the loader by the committed corpora and
# what make fuzz kept: the harnesses built again with source-based coverage.
FUZZCOV := build-fuzzcov/fuzz
fuzz-cov:
	$(MAKE) BUILD=build-fuzzcov FUZZ_COV='-fprofile-instr-generate -fcoverage-mapping' $(FUZZ_NAMES:%=$(FUZZCOV)/fuzz_%)
	rm -f $(FUZZCOV)/*.profraw
	bash tests/fuzz/run.sh $(FUZZCOV) cov
	$(LLVM_PROFDATA) merge -o $(FUZZCOV)/taskfile.profdata $(FUZZCOV)/taskfile.profraw
	$(LLVM_COV) report $(FUZZCOV)/fuzz_taskfile -instr-profile=$(FUZZCOV)/taskfile.profdata src/core/taskfile.c
	$(LLVM_PROFDATA) merge -o $(FUZZCOV)/ckpt.profdata $(FUZZCOV)/journal.profraw \
	  $(FUZZCOV)/snapshot.profraw $(FUZZCOV)/snapedit.profraw
	$(LLVM_COV) report $(FUZZCOV)/fuzz_journal -object $(FUZZCOV)/fuzz_snapshot \
	  -object $(FUZZCOV)/fuzz_snapedit -instr-profile=$(FUZZCOV)/ckpt.profdata \
	  src/ckpt/load.c src/ckpt/journal.c src/ckpt/snapshot.c

fuzz-seeds: $(BUILD)/fuzz/seeds
	$(BUILD)/fuzz/seeds tests/fuzz/corpus

# Debian packages; elsewhere, say what to load.
DEB_PKGS := openmpi-bin libopenmpi-dev libhwloc-dev hwloc libhdf5-openmpi-dev \
            hdf5-tools libcunit1-dev libjansson-dev pkg-config make gcc parallel procps \
            clang-14 libclang-rt-14-dev llvm-14 \
            slurmctld slurmd slurm-client munge \
            liblapacke-dev libopenblas-dev python3 python3-h5py iproute2 \
            man-db groff-base bash-completion
deps:
	@if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    sudo_=; [ "$$(id -u)" = 0 ] || sudo_=sudo; \
	    $$sudo_ apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo_ apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else \
	  echo "No apt here. Load instead (e.g. 'module load'): an MPI with mpicc (Open MPI 4+),"; \
	  echo "hwloc 2.x, parallel HDF5 1.10+, CUnit 2.1, jansson 2.x; then run make."; \
	fi

# The command, the library (shared and static), its headers and pkg-config
# file, the man page, bash completion (where the bash-completion package
# looks for it), and the license, which a binary copy must carry. The
# command has the library linked in statically: it needs no rpath to
# $(PREFIX)/lib (tests/docs/install.sh runs it with an empty environment).
MAN1DIR  = $(PREFIX)/share/man/man1
BASHCOMP = $(PREFIX)/share/bash-completion/completions
DOCDIR   = $(PREFIX)/share/doc/taskfarm
install: lib bin/taskfarm
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(MAN1DIR) $(DESTDIR)$(BASHCOMP) $(DESTDIR)$(DOCDIR)
	install -m 644 lib/libtaskfarm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 lib/libtaskfarm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtaskfarm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtaskfarm.so.$(SOVER)
	ln -sf libtaskfarm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtaskfarm.so
	install -m 644 include/taskfarm*.h $(DESTDIR)$(PREFIX)/include/
	sed 's|^prefix=.*|prefix=$(PREFIX)|' lib/taskfarm.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/taskfarm.pc
	install -m 755 bin/taskfarm $(DESTDIR)$(PREFIX)/bin/
	install -m 644 docs/taskfarm.1 $(DESTDIR)$(MAN1DIR)/
	install -m 644 completions/taskfarm.bash $(DESTDIR)$(BASHCOMP)/taskfarm
	install -m 644 LICENSE CHANGELOG.md $(DESTDIR)$(DOCDIR)/

# Removes exactly what install put there (the directories stay, but for
# share/doc/taskfarm, which is ours).
.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/taskfarm \
	    $(addprefix $(DESTDIR)$(PREFIX)/lib/,libtaskfarm.a libtaskfarm.so \
	        libtaskfarm.so.$(SOVER) libtaskfarm.so.$(VERSION) pkgconfig/taskfarm.pc) \
	    $(addprefix $(DESTDIR)$(PREFIX)/include/,$(notdir $(wildcard include/taskfarm*.h))) \
	    $(DESTDIR)$(MAN1DIR)/taskfarm.1 $(DESTDIR)$(BASHCOMP)/taskfarm \
	    $(DESTDIR)$(DOCDIR)/LICENSE $(DESTDIR)$(DOCDIR)/CHANGELOG.md
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# The quick start: install what is missing, build, run the example on 4 ranks.
demo:
	$(MAKE) deps
	$(MAKE) bin/wavefront
	mpirun --oversubscribe -np 4 bin/wavefront

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-ubsan build-fuzzcov lib bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
