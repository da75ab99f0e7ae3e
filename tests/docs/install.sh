#!/usr/bin/env bash
# `make install` as a site would use it: what it installs, `man taskfarm`, the binary with an empty environment, bash completion, `make uninstall`; usage: install.sh [ROOT].
#
# Installs into a temporary PREFIX (and once more with DESTDIR), then:
#   - every file the README promises is there, the pkg-config file names PREFIX;
#   - the man page: groff -ww warns of nothing; `man -w taskfarm` finds it
#     through PATH (man-db looks in BIN/../share/man) and through MANPATH;
#     the page names every command of `taskfarm --help`, every option of
#     `taskfarm run --help`, every attribute and TASKFARM_* variable of
#     docs/taskfile.md, and every exit status;
#   - the installed taskfarm runs `--version`, `check` and a two-task `run`
#     under `env -i PATH=/usr/bin:/bin`: no LD_LIBRARY_PATH, no rpath into
#     this tree, libtaskfarm linked in, every library found by the loader;
#   - the completion file parses, registers `complete -F _taskfarm taskfarm`,
#     completes commands, options and directories, and the bash-completion
#     package (when installed) finds it under PREFIX/share;
#   - `make uninstall` leaves no file behind.
# The make commands remake lib and bin/taskfarm if they are out of date;
# INSTALL_MAKEFLAGS='-o lib -o bin/taskfarm' installs what is built as it is.
set -u
ROOT=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1
P=$tmp/prefix
CLEAN=(env -i PATH=/usr/bin:/bin HOME="$tmp")

# mk TARGET ARGS...: make in the tree, quietly; output in make.txt.
mk() {
    # shellcheck disable=SC2086 # INSTALL_MAKEFLAGS is a list of words
    make -s -C "$ROOT" ${INSTALL_MAKEFLAGS:-} "$@" </dev/null >make.txt 2>&1
}

# ---- install -----------------------------------------------------------------
if mk install PREFIX="$P"; then ok "make install PREFIX=$P"; else
    bad "make install PREFIX=$P"
    sed 's/^/    /' make.txt | tail -20
    summary install.sh
    exit
fi
want=(bin/taskfarm lib/libtaskfarm.a lib/libtaskfarm.so lib/libtaskfarm.so.0
    lib/pkgconfig/taskfarm.pc share/man/man1/taskfarm.1
    share/bash-completion/completions/taskfarm share/doc/taskfarm/LICENSE)
for h in "$ROOT"/include/taskfarm*.h; do want+=("include/${h##*/}"); done
missing=
for f in "${want[@]}"; do [ -e "$P/$f" ] || missing+=" $f"; done
check "installs bin, lib, include, pkg-config, man page, completion, license (${#want[@]} files)" \
    '[ -z "$missing" ]' || note "missing:$missing"
check "bin/taskfarm is executable, the man page and completion are not" \
    '[ -x "$P/bin/taskfarm" ] && [ ! -x "$P/share/man/man1/taskfarm.1" ] &&
     [ ! -x "$P/share/bash-completion/completions/taskfarm" ]'
check "taskfarm.pc names PREFIX" "grep -qx 'prefix=$P' '$P/lib/pkgconfig/taskfarm.pc'"

# A staged install (packagers): the files under DESTDIR, the paths without it.
if mk install DESTDIR="$tmp/stage" PREFIX=/opt/tf-test; then
    check "DESTDIR: files under DESTDIR/PREFIX, taskfarm.pc names PREFIX" \
        '[ -e "$tmp/stage/opt/tf-test/share/man/man1/taskfarm.1" ] &&
         grep -qx prefix=/opt/tf-test "$tmp/stage/opt/tf-test/lib/pkgconfig/taskfarm.pc"'
else
    bad "make install DESTDIR=$tmp/stage PREFIX=/opt/tf-test"
    sed 's/^/    /' make.txt | tail -20
fi

# ---- the man page ------------------------------------------------------------
MAN1=$P/share/man/man1/taskfarm.1
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww "$MAN1" >/dev/null 2>groff.txt
    CHECK_SHOW=groff.txt check "groff -man -ww: no warning" '[ ! -s groff.txt ]'
else
    skip "groff -ww of the man page" --missing groff
fi
if command -v man >/dev/null; then
    found=$(env -i PATH="$P/bin:/usr/bin:/bin" HOME="$tmp" man -w taskfarm 2>&1)
    check "man -w taskfarm with PREFIX/bin on PATH finds it" '[ "$found" = "$MAN1" ]' ||
        note "man -w: $found"
    found=$("${CLEAN[@]}" MANPATH="$P/share/man" man -w taskfarm 2>&1)
    check "MANPATH=PREFIX/share/man man -w taskfarm finds it" '[ "$found" = "$MAN1" ]' ||
        note "man -w: $found"
    # Rendered as a reader sees it, overstrikes (bold) taken out.
    "${CLEAN[@]}" MANPATH="$P/share/man" MANWIDTH=100 man taskfarm 2>man.err |
        sed 's/.\x08//g' >man.txt
    check "man taskfarm renders" 'grep -q "^SYNOPSIS" man.txt && [ ! -s man.err ]'
else
    skip "man -w taskfarm, man taskfarm" --missing man-db
    if command -v groff >/dev/null; then
        groff -man -Tutf8 -P-cbou -rLL=100n "$MAN1" >man.txt 2>/dev/null
    else
        skip "the man page's sections against the program and docs/taskfile.md" --missing groff
        : >man.txt
    fi
fi

# run's options as its usage lists them (for the page and the completion).
"$P/bin/taskfarm" run --help >runhelp.txt 2>&1
opts=$(grep -Eo '^ +(-[a-z], )?--[a-z][a-z-]*' runhelp.txt | grep -Eo -- '-[a-z]\b|--[a-z-]+')
if [ -s man.txt ]; then
    # section NAME: the rendered section NAME, without its heading.
    section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on' man.txt; }
    "$P/bin/taskfarm" --help >help.txt 2>&1
    cmds=$(awk '/^commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } c && /^$/ { c = 0 }' help.txt)
    section COMMANDS >commands.txt
    absent=
    for c in $cmds; do grep -Eq "^ {7}$c( |\$)" commands.txt || absent+=" $c"; done
    check "COMMANDS has each command of taskfarm --help (${cmds//$'\n'/ })" \
        '[ -n "$cmds" ] && [ -z "$absent" ]' || note "not in COMMANDS:$absent"
    section OPTIONS >options.txt
    absent=
    for o in $opts; do grep -Eq "^ {7}(-[a-z], )?$o( |,|\$)" options.txt || absent+=" $o"; done
    check "OPTIONS has each option of taskfarm run --help ($(wc -w <<<"$opts"))" \
        '[ -n "$opts" ] && [ -z "$absent" ]' || note "not in OPTIONS:$absent"
    attrs=$(grep -Eo '^\| `@[a-z]+' "$ROOT/docs/taskfile.md" | cut -c4- | sort -u)
    attrs="$attrs @barrier"
    section "TASK FILE" >taskfile.txt
    absent=
    for a in $attrs; do grep -Eq "^ {7}$a(=| |\$)" taskfile.txt || absent+=" $a"; done
    check "TASK FILE has each attribute of docs/taskfile.md (${attrs//$'\n'/ })" \
        '[ -z "$absent" ]' || note "not in TASK FILE:$absent"
    vars=$(grep -Eo '^\| `(TASKFARM_[A-Z_]+|OMP_NUM_THREADS)`' "$ROOT/docs/taskfile.md" | tr -d '|` ' | sort -u)
    section ENVIRONMENT >env.txt
    absent=
    for v in $vars; do grep -Eq "^ {7}$v\$" env.txt || absent+=" $v"; done
    check "ENVIRONMENT has each variable a task sees in docs/taskfile.md ($(wc -w <<<"$vars"))" \
        '[ -n "$vars" ] && [ -z "$absent" ]' || note "not in ENVIRONMENT:$absent"
    section "EXIT STATUS" >exit.txt
    absent=
    for s in 0 1 2 3 75; do grep -Eq "^ {7}$s( |\$)" exit.txt || absent+=" $s"; done
    check "EXIT STATUS has 0, 1, 2, 3 and 75" '[ -z "$absent" ]' || note "not there:$absent"
fi

# ---- the installed binary, with an empty environment -------------------------
TF=$P/bin/taskfarm
readelf -d "$TF" >dyn.txt 2>&1
check "taskfarm has libtaskfarm linked in (no NEEDED libtaskfarm.so)" \
    '! grep -q "NEEDED.*libtaskfarm" dyn.txt'
CHECK_SHOW=dyn.txt check "no rpath or runpath into the build tree" \
    '! grep -E "R(UN)?PATH" dyn.txt | grep -qF "$ROOT"'
"${CLEAN[@]}" ldd "$TF" >ldd.txt 2>&1
CHECK_SHOW=ldd.txt check "env -i: ldd finds every library taskfarm needs" \
    '! grep -q "not found" ldd.txt'
run "env -i taskfarm --version" 0 "${CLEAN[@]}" "$TF" --version &&
    check "  prints taskfarm MAJOR.MINOR.PATCH" 'grep -Eqx "taskfarm [0-9]+\.[0-9]+\.[0-9]+" out.txt'
printf '@id=hello echo hello\n@id=after @after=hello echo after\n' >small.txt
run "env -i taskfarm check small.txt" 0 "${CLEAN[@]}" "$TF" check small.txt &&
    check "  prints 2 tasks, 1 dependencies" 'grep -q "^small.txt: 2 tasks, 1 dependencies," out.txt'
run "env -i taskfarm run small.txt (one process)" 0 "${CLEAN[@]}" "$TF" run -q -o farm small.txt &&
    check "  both tasks ran, in order" '[ "$(rows farm)" = 2 ] &&
        [ "$(cat farm/out/hello.out farm/out/after.out 2>/dev/null)" = "hello
after" ]'

# ---- bash completion ---------------------------------------------------------
COMP=$P/share/bash-completion/completions/taskfarm
check "the completion file parses (bash -n)" 'bash -n "$COMP"'
reg=$(bash --norc --noprofile -c ". '$COMP' && complete -p taskfarm" 2>&1)
check "sourced, it registers: complete -p taskfarm" '[ "$reg" = "complete -F _taskfarm taskfarm" ]' ||
    note "complete -p: $reg"
# comp WORD...: what completing the last WORD offers, the installed
# taskfarm first on PATH, in $tmp/comp (a directory out/ and a file t.txt).
mkdir -p comp/out && : >comp/t.txt
comp() {
    (cd comp && PATH=$P/bin:/usr/bin:/bin bash --norc --noprofile -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _taskfarm; printf "%s\n" "${COMPREPLY[@]}"' - "$COMP" "$@" | sort | tr '\n' ' ')
}
check "taskfarm ru<TAB>: run" '[ "$(comp taskfarm ru)" = "run " ]'
check "taskfarm run --sl<TAB>: --slots" '[ "$(comp taskfarm run --sl)" = "--slots " ]'
check "taskfarm run --bind <TAB>: core numa none" '[ "$(comp taskfarm run --bind "")" = "core none numa " ]'
check "taskfarm run -o <TAB>: directories only" '[ "$(comp taskfarm run -o "")" = "out " ]'
check "taskfarm run <TAB>: TASKFILE, files and directories" '[ "$(comp taskfarm run "")" = "out t.txt " ]'
check "taskfarm status <TAB>: OUTDIR, directories only" '[ "$(comp taskfarm status "")" = "out " ]'
check "taskfarm status -<TAB>: --tasks --failed --json" '[ "$(comp taskfarm status -)" = "--failed --help --json --tasks -h " ]'
check "taskfarm status --tasks <TAB>: OUTDIR" '[ "$(comp taskfarm status --tasks "")" = "out " ]'
check "taskfarm run gzip {} :<TAB>: argument mode's markers" '[ "$(comp taskfarm run gzip {} :)" = "::: :::+ :::: ::::+ " ]'
check "taskfarm run gzip {} ::: <TAB>: files, not options" '[ "$(comp taskfarm run gzip {} ::: "")" = "out t.txt " ]'
check "taskfarm run -q ls -l {} ::: a -<TAB>: nothing of run's (an argument)" '[ "$(comp taskfarm run -q ls -l {} ::: a -)" = " " ]'
check "taskfarm check --d<TAB>: --dry-run" '[ "$(comp taskfarm check --d)" = "--dry-run " ]'
offered=$(comp taskfarm run t.txt -)
absent=
for o in $opts; do [[ " $offered" == *" $o "* ]] || absent+=" $o"; done
check "taskfarm run t.txt -<TAB>: every option of taskfarm run --help" \
    '[ -n "$opts" ] && [ -z "$absent" ]' || note "not offered:$absent"
BC=/usr/share/bash-completion/bash_completion
if [ -r "$BC" ]; then
    reg=$(XDG_DATA_DIRS=$P/share bash --norc --noprofile -c \
        ". $BC; __load_completion taskfarm && complete -p taskfarm" 2>&1)
    check "bash-completion loads it from PREFIX/share (XDG_DATA_DIRS)" \
        '[ "$reg" = "complete -F _taskfarm taskfarm" ]' || note "got: $reg"
else
    skip "bash-completion's lookup of PREFIX/share" --missing bash-completion
fi

# ---- uninstall ---------------------------------------------------------------
if mk uninstall PREFIX="$P"; then
    left=$(find "$P" ! -type d | sed "s|^$P/||")
    check "make uninstall leaves no file behind" '[ -z "$left" ]' ||
        note "left: ${left//$'\n'/ }"
else
    bad "make uninstall PREFIX=$P"
    sed 's/^/    /' make.txt | tail -20
fi

summary install.sh
