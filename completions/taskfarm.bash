# bash completion for taskfarm(1): its commands, run's options and their values, argument mode's markers, file and directory names.
#
# `make install` puts it in $(PREFIX)/share/bash-completion/completions/taskfarm,
# where the bash-completion package loads it the first time `taskfarm` is
# completed: at once for PREFIX=/usr/local or /usr, for another PREFIX once
# PREFIX/share is in XDG_DATA_DIRS. Without that package, source it from
# ~/.bashrc: it needs nothing from bash-completion.
#
# The commands and run's options are read from the program's own usage
# (`taskfarm --help`, `taskfarm run --help`) the first time, so that an
# option added to the program completes without editing this file; an
# option is taken to want a value when its usage line names one in capitals
# (`--slots N`). The lists below are used when that reading finds nothing.

_taskfarm_cmds_builtin="run add check status topo report version help"
_taskfarm_opts_builtin="-o --outdir --resume --follow --force --checkpoint-every --slots
    --shell --retries --timeout --grace --halt --halt-on-error --no-steal --scheduler-only --heartbeat --standby
    --no-trace --output --bind --status-every -q --quiet -v --verbose --deadline --deadline-margin"
_taskfarm_valued_builtin="-o --outdir --checkpoint-every --slots --shell
    --retries --timeout --grace --halt --heartbeat --output --bind --status-every --deadline
    --deadline-margin"

# _taskfarm_learn PROG: sets _taskfarm_cmds, _taskfarm_opts and
# _taskfarm_valued from PROG's usage, once per PROG.
_taskfarm_learn() {
    [[ ${_taskfarm_learned-} == "$1" ]] && return
    _taskfarm_learned=$1
    local line w valued words opts=() names=()
    _taskfarm_cmds=$("$1" --help </dev/null 2>/dev/null |
        awk '/^commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } c && /^$/ { c = 0 }')
    _taskfarm_opts='' _taskfarm_valued=''
    while read -r line; do
        [[ $line == -* ]] || continue
        names=() valued=
        read -ra words <<<"$line" # not `for w in $line`: no globbing
        for w in "${words[@]}"; do
            case $w in
            -*=*) names+=("${w%%=*}") valued=1 ;;
            -*) names+=("${w%,}") ;;
            *) [[ $w =~ ^[A-Z][A-Z_]*$ ]] && valued=1; break ;;
            esac
        done
        opts+=("${names[@]}")
        [[ -n $valued ]] && _taskfarm_valued+=" ${names[*]}"
    done < <("$1" run --help </dev/null 2>/dev/null)
    _taskfarm_opts=${opts[*]}
    [[ -n $_taskfarm_cmds ]] || _taskfarm_cmds=$_taskfarm_cmds_builtin
    if [[ -z $_taskfarm_opts ]]; then
        _taskfarm_opts=$_taskfarm_opts_builtin
        _taskfarm_valued=$_taskfarm_valued_builtin
    fi
}

# _taskfarm_is_valued OPT: OPT takes a value.
_taskfarm_is_valued() {
    [[ " ${_taskfarm_valued//$'\n'/ } " == *" $1 "* ]]
}

# _taskfarm_files KIND CUR: file (-f) or directory (-d) names.
_taskfarm_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen "$1" -- "$2")
}

_taskfarm() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local prog=${COMP_WORDS[0]} opt='' i cmd='' at=0 npos=0 w sources=''
    local markers="::: :::+ :::: ::::+"
    COMPREPLY=()
    # ~/bin/taskfarm as typed; else the one on PATH.
    [[ $prog == */* ]] && prog=${prog/#\~/$HOME}
    [[ -x $prog && ! -d $prog ]] || prog=$(type -P taskfarm) || prog=
    if [[ -n $prog ]]; then
        _taskfarm_learn "$prog"
    else
        _taskfarm_cmds=$_taskfarm_cmds_builtin _taskfarm_opts=$_taskfarm_opts_builtin
        _taskfarm_valued=$_taskfarm_valued_builtin
    fi

    # The value of an option: `--bind c`, or `--bind=c` (which bash splits
    # at the '=' into --bind, =, c).
    if [[ $cur == = ]]; then
        opt=$prev cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        opt=${COMP_WORDS[COMP_CWORD - 2]}
    elif _taskfarm_is_valued "$prev"; then
        opt=$prev
    fi

    # The command: the first word that is not an option.
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} != -* ]]; then
            cmd=${COMP_WORDS[i]} at=$i
            break
        fi
    done
    if [[ -z $cmd ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_taskfarm_cmds -h --help --version" -- "$cur")
        return
    fi

    # Words given after the command that are neither options nor their values.
    for ((i = at + 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == = ]]; then
            ((i++))
        elif [[ -z $sources && $w == -* ]]; then
            [[ $cmd == run ]] && _taskfarm_is_valued "$w" && [[ ${COMP_WORDS[i + 1]-} != = ]] && ((i++))
            [[ $cmd == report && $w == -o ]] && ((i++))
            [[ $cmd == add && $w == --timeout ]] && ((i++))
        else
            ((npos++))
            # Argument mode: after a ::: or ::::, words are its arguments.
            [[ " $markers " == *" $w "* ]] && sources=$w
        fi
    done
    # Argument mode (run, check): a marker, or after one, arguments and
    # files (file names are what ::: and :::: are given most).
    if [[ ($cmd == run || $cmd == check) && -z $opt ]] &&
        [[ -n $sources || $cur == :* ]]; then
        if [[ $cur == :* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$markers" -- "$cur")
        else
            _taskfarm_files -f "$cur"
        fi
        return
    fi

    case $cmd in
    run)
        if [[ -n $opt ]] && _taskfarm_is_valued "$opt"; then
            case $opt in
            -o | --outdir) _taskfarm_files -d "$cur" ;;
            --bind) mapfile -t COMPREPLY < <(compgen -W "core numa none" -- "$cur") ;;
            --output) mapfile -t COMPREPLY < <(compgen -W "files tag none" -- "$cur") ;;
            --deadline) mapfile -t COMPREPLY < <(compgen -W "none +30m +1h" -- "$cur") ;;
            --halt) # GNU parallel's forms; N and N% are the user's to choose
                mapfile -t COMPREPLY < <(compgen -W "never now,fail=1 soon,fail=1
                    now,success=1 soon,success=1 now,done=1 soon,done=1" -- "$cur")
                ;;
            --shell)
                mapfile -t COMPREPLY < <(compgen -W "bash sh $(grep -s '^/' /etc/shells)" -- "$cur")
                ;;
            esac # numbers: nothing to offer
        elif [[ $cur == -* ]] || ((npos > 0)); then
            mapfile -t COMPREPLY < <(compgen -W "$_taskfarm_opts -h --help" -- "$cur")
        else
            _taskfarm_files -f "$cur" # TASKFILE
        fi
        ;;
    check)
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--dry-run -h --help" -- "$cur")
        elif ((npos == 0)); then
            _taskfarm_files -f "$cur"
        fi
        ;;
    add)
        if [[ $prev == --timeout ]]; then
            : # a duration
        elif [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--end --timeout -h --help" -- "$cur")
        elif ((npos == 0)); then
            _taskfarm_files -d "$cur" # OUTDIR
        elif ((npos == 1)); then
            _taskfarm_files -f "$cur" # FILE
        fi
        ;;
    status)
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--tasks --failed --json -h --help" -- "$cur")
        elif ((npos == 0)); then
            _taskfarm_files -d "$cur" # OUTDIR
        fi
        ;;
    report)
        if [[ $prev == -o ]]; then
            _taskfarm_files -f "$cur" # the SVG file
        elif [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "-o -h --help" -- "$cur")
        elif ((npos == 0)); then
            _taskfarm_files -d "$cur"
        fi
        ;;
    topo)
        mapfile -t COMPREPLY < <(compgen -W "-h --help" -- "$cur")
        ;;
    help)
        ((npos == 0)) && mapfile -t COMPREPLY < <(compgen -W "$_taskfarm_cmds" -- "$cur")
        ;;
    esac
}

complete -F _taskfarm taskfarm
