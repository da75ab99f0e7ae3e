#!/usr/bin/env bash
# Builds and runs docs/api.md's complete programs with the command lines the page gives, and its link lines of section 2; usage: examples.sh [ROOT] (default: this tree).
#
# The page is read, not copied: a C block that opens with `/* NAME.c: ...`
# and has a main() is a complete program, and the first sh block after it
# holds its commands. Each program is written into its own directory under
# $tmp, next to links to the tree's include/ and lib/, so that the page's
# relative paths (-Iinclude, lib/libtaskfarm.a) hold and every command runs
# as the page prints it:
#   make lib          skipped: `make check-docs` builds lib first;
#   make ...          run in the tree (only `make install PREFIX=$PREFIX`);
#   mpicc ...         must compile and link;
#   mpirun ..., ./P   must exit 0 within 60 s (mpirun gets --oversubscribe,
#                     for machines with fewer cores than the page's -np;
#                     stdin is /dev/null, or mpirun would eat the block);
#   X=V, export X=V   evaluated here, so later lines see them.
# A trailing comment says what a run prints: `# prints: TEXT` (stdout is
# exactly that line), `# e.g. TEXT` (the same line with other numbers) or
# `same result` (what the line before printed). Any other command fails:
# a line the script cannot check must not pass unchecked.
#
# Section 2's sh blocks (the in-tree link line, the installed copy with
# pkg-config and shared, and with the archive) are run in order with
# squares.c as prog.c, and HOME set to $tmp/home so that the page's
# PREFIX=$HOME/opt/taskfarm installs into $tmp. Each program they link is
# run alone and on 3 ranks, and checked for the library it was meant to use.
set -u
ROOT=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$(dirname "$0")/../lib.sh"
tests_tmp
DOC=$ROOT/docs/api.md
DOCN=docs/api.md

# The page's fenced blocks, one file each ($tmp/blocks/NNN), and an index of
# "NNN LANG FIRST_LINE SECTION". An indented fence (inside a list item) has
# its indentation taken off its lines.
mkdir -p "$tmp/blocks"
awk -v dir="$tmp/blocks" '
    !inb && /^## [0-9]+\./ { sec = $2 + 0 }
    /^ *```/ {
        if (!inb) {
            inb = 1; n++
            ind = match($0, /```/) - 1
            lang = substr($0, ind + 4); if (lang == "") lang = "-"
            f = sprintf("%s/%03d", dir, n)
            printf "%03d %s %d %d\n", n, lang, NR + 1, sec > (dir "/index")
            printf "" > f
        } else {
            inb = 0; close(f)
        }
        next
    }
    inb {
        if (substr($0, 1, ind) ~ /^ *$/) $0 = substr($0, ind + 1)
        print > f
    }' "$DOC"

# sh_lines FILE FIRST_LINE: the block's command lines, continuations joined,
# each as "DOC_LINE<TAB>TEXT".
sh_lines() {
    awk -v first="$2" '
        buf == "" { at = first + NR - 1 }
        /\\$/ { sub(/\\$/, ""); buf = buf $0; next }
        { print at "\t" buf $0; buf = "" }' "$1"
}

# ere TEXT: TEXT as an extended regular expression matching itself.
ere() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'; }

# expect_line WHAT RE: stdout of the last run (out.txt) is one line, matching RE.
expect_line() {
    expect_re=$2 # check's EXPR sees globals, not these positional parameters
    CHECK_SHOW=out.txt check "$1" \
        '[ "$(wc -l <out.txt)" = 1 ] && grep -Exq -- "$expect_re" out.txt'
}

# step WHAT DOC_LINE TEXT: one command line of the page, done as the page
# says, in the current directory (make in the tree). Sets `built` after a
# link line that worked and `last_want` after a run line that says what it
# prints. Status 1 when the line failed.
built=
last_want=
step() {
    local what=$1 at=$2 text=$3 cmd comment='' want=''
    cmd=$(printf '%s' "$text" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
    if [[ $cmd =~ ^(.*[^[:space:]])[[:space:]]+#[[:space:]]*(.*)$ ]]; then
        cmd=${BASH_REMATCH[1]} comment=${BASH_REMATCH[2]}
    fi
    built=
    if [[ $cmd =~ ^(export[[:space:]]+)?[A-Za-z_][A-Za-z0-9_]*=[^[:space:]]*$ ]]; then
        eval "$cmd" || { bad "$what: $cmd ($DOCN:$at)"; return 1; }
        return 0
    fi
    case $cmd in
    '') return 0 ;;
    'make lib' | 'make lib '*)
        note "$what: '$cmd' ($DOCN:$at) left to the Makefile: check-docs needs lib"
        ;;
    'make '*)
        if (cd "$ROOT" && eval "$cmd") </dev/null >make.txt 2>&1; then
            ok "$what: $cmd ($DOCN:$at)"
        else
            bad "$what: $cmd ($DOCN:$at) failed"
            sed 's/^/    /' make.txt | tail -20
            return 1
        fi
        ;;
    'mpicc '*)
        if eval "$cmd" </dev/null >cc.txt 2>&1; then
            ok "$what: compiles and links as $DOCN:$at shows"
            built=$cmd
        else
            bad "$what: does not build as $DOCN:$at shows: $cmd"
            sed 's/^/    /' cc.txt | head -12
            return 1
        fi
        ;;
    'mpirun '* | ./*)
        [[ $cmd == 'mpirun '* && $cmd != *--oversubscribe* ]] &&
            cmd="mpirun --oversubscribe ${cmd#mpirun }"
        case $comment in
        'prints: '*) want=$(ere "${comment#prints: }") ;;
        'e.g. '*) want=$(ere "${comment#e.g. }" | sed -E 's/[0-9]+/[0-9]+/g') ;;
        *'same result'*) want=$last_want ;;
        esac
        RUN_LIMIT=60 run "$what: $cmd ($DOCN:$at)" 0 bash -c "$cmd" </dev/null || return 1
        if [ -n "$want" ]; then
            expect_line "$what: $cmd prints what $DOCN:$at says" "$want" || return 1
            last_want=$want
        fi
        ;;
    *)
        bad "$what: $DOCN:$at: no rule to check this command: $cmd"
        return 1
        ;;
    esac
}

# workdir NAME: a fresh directory $tmp/NAME with links to include/ and lib/; cd there.
workdir() {
    mkdir -p "$tmp/$1" && cd "$tmp/$1" || exit 1
    ln -s "$ROOT/include" include
    ln -s "$ROOT/lib" lib
}

# ---- the complete programs ---------------------------------------------------
declare -A want_of=() # NAME.c -> what its first run line prints (an ERE)
pending='' pending_at='' pending_n='' examples=0
while read -r n lang first sec; do
    if [ "$lang" = c ]; then
        [ -n "$pending" ] && bad "$pending ($DOCN:$pending_at): no sh block with its command lines follows it"
        pending=
        name=$(sed -nE '1s|^/\* ([A-Za-z0-9_-]+\.c): .*|\1|p' "$tmp/blocks/$n")
        if [ -n "$name" ] && grep -q '^int main(' "$tmp/blocks/$n"; then
            pending=$name pending_at=$first pending_n=$n
        fi
        continue
    fi
    [ "$lang" = sh ] && [ -n "$pending" ] || continue
    name=$pending
    pending=
    examples=$((examples + 1))
    echo "== $name ($DOCN:$pending_at)"
    workdir "ex-${name%.c}"
    cp "$tmp/blocks/$pending_n" "$name"
    grep -q -- "$name" "$tmp/blocks/$n" ||
        bad "$name: the sh block at $DOCN:$first does not build $name"
    links=0 last_want='' failed=''
    while IFS=$'\t' read -r at text; do
        step "$name" "$at" "$text" || { failed=$at; break; }
        [ -n "$built" ] && links=$((links + 1))
        [ -n "$last_want" ] && [ -z "${want_of[$name]:-}" ] && want_of[$name]=$last_want
    done < <(sh_lines "$tmp/blocks/$n" "$first")
    [ "$links" -gt 0 ] || [ -n "$failed" ] || bad "$name: the sh block at $DOCN:$first has no mpicc line"
done <"$tmp/blocks/index"
[ -n "$pending" ] && bad "$pending ($DOCN:$pending_at): no sh block with its command lines follows it"
check "$DOCN has complete programs ($examples found)" '[ "$examples" -gt 0 ]'

# ---- section 2: building and linking -------------------------------------
# squares.c stands for the page's prog.c: it uses MPI and prints one line.
echo "== $DOCN section 2, squares.c as prog.c"
workdir link
export HOME=$tmp/home
mkdir -p "$HOME"
if [ -z "${want_of[squares.c]:-}" ] || ! cp "$tmp/ex-squares/squares.c" prog.c; then
    bad "section 2: needs squares.c from $DOCN, built and run as its block says, and it was not"
else
    # The blocks build on each other (PREFIX, the install): after the first
    # line that fails, the rest would only fail for the same reason.
    blocks=0 stopped=''
    while read -r n lang first sec; do
        [ "$sec" = 2 ] && [ "$lang" = sh ] && [ -z "$stopped" ] || continue
        blocks=$((blocks + 1))
        while IFS=$'\t' read -r at text; do
            if ! step "section 2" "$at" "$text"; then
                stopped=$at
                note "section 2: the lines after $DOCN:$at not run"
                break
            fi
            [ -n "$built" ] || continue
            # The program links the library the line names, and finds it.
            if [[ $built == *libtaskfarm.a* ]]; then
                check "section 2: $DOCN:$at links the archive (no libtaskfarm.so in NEEDED)" \
                    '! readelf -d prog | grep -q "NEEDED.*libtaskfarm"'
            elif [[ $built == *'--libs taskfarm'* ]]; then
                ldd prog >ldd.txt 2>&1
                CHECK_SHOW=ldd.txt check "section 2: $DOCN:$at links the installed libtaskfarm.so.0 and the loader finds it" \
                    'grep -q "libtaskfarm\.so\.0 => $HOME/" ldd.txt'
            fi
            RUN_LIMIT=60 run "section 2: ./prog, linked as $DOCN:$at shows" 0 ./prog </dev/null &&
                expect_line "section 2: ./prog prints what squares.c's block says" "${want_of[squares.c]}"
            RUN_LIMIT=60 run "section 2: mpirun -np 3 ./prog, linked as $DOCN:$at shows" 0 \
                mpirun --oversubscribe -np 3 ./prog </dev/null &&
                expect_line "section 2: mpirun -np 3 ./prog prints what squares.c's block says" "${want_of[squares.c]}"
        done < <(sh_lines "$tmp/blocks/$n" "$first")
    done <"$tmp/blocks/index"
    [ -n "$stopped" ] ||
        check "section 2 has its sh blocks ($blocks found)" '[ "$blocks" -gt 0 ]'
fi

summary "docs examples"
