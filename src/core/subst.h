/* GNU parallel's replacement strings ({}, {.}, {/}, {//}, {/.}, {#}, {N}) and its shell quoting. */
#ifndef TF_CORE_SUBST_H
#define TF_CORE_SUBST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One piece of code turns a command template and a job's arguments into
 * the command that runs, for both `taskfarm run CMD ::: ARGS` and a task
 * file's @array lines, and does it as GNU parallel 20221122 does (its
 * default replacement strings, without --plus):
 *
 *   {}    every argument, each quoted, joined by spaces
 *   {.}   without its extension: a last '.' and what follows it, when
 *         that holds no '/' ("dir/f.tar.gz" -> "dir/f.tar", ".x" -> "")
 *   {/}   its basename: what follows the last '/'
 *   {//}  its dirname, as Perl's File::Basename::dirname ("f" -> ".")
 *   {/.}  its basename without its extension
 *   {#}   the job's sequence number, 1 for the first
 *   {N} {N.} {N/} {N//} {N/.}   the same on the argument of input source
 *         N alone (N from 1; -N counts from the last source)
 *
 * Anything else between braces is left as written ("{foo}", "{..}",
 * "awk '{print $1}'"), as parallel leaves it. parallel's {%} (the job
 * slot) and {= perl =} have no equivalent here: tf_subst_check refuses
 * them, as it refuses {0} and a source number past the last.
 *
 * A substituted argument is quoted for a Bourne shell exactly as parallel
 * quotes it: as it is when it holds only [-_.+a-zA-Z0-9/] and is not
 * empty, else in single quotes with each ' written '"'"' (the quotes that
 * would be empty at either end dropped), '' for an empty argument. {#} is
 * never quoted. Nor is anything when a replacement string stands in the
 * template's first word (before any blank, newline or '='): `{}` or
 * `{1} {2}` run the arguments as commands, and `taskfarm run ::: CMDS`
 * (no template) is `{}`. A template without any replacement string gets
 * the arguments appended, quoted, after a space.
 */

/* One argument of a job: the value one input source gives it. */
typedef struct tf_subst_arg {
    const char *s;
    size_t len;
} tf_subst_arg;

/* A checked template; tf_subst_init fills it. Points into the text. */
typedef struct tf_subst {
    const char *t;
    size_t n;
    uint32_t nargs; /* arguments of each job */
    bool any;       /* holds a replacement string: nothing is appended */
    bool quote;     /* arguments are quoted (see above) */
} tf_subst;

/* What tf_subst_init found wrong in a template. */
enum {
    TF_SUBST_OK,
    TF_SUBST_SLOT,  /* {%}: parallel's job slot number */
    TF_SUBST_PERL,  /* {= perl expression =} or {N= ... =} */
    TF_SUBST_ZERO,  /* {0}: sources are numbered from 1 */
    TF_SUBST_RANGE, /* {N} or {-N} past the last of the sources */
};

/*
 * Check the template t[0..n) (not NUL-terminated; t may be NULL when n is
 * 0) for jobs of nargs arguments, into *s. Returns TF_SUBST_OK, or the
 * first problem, with the offset and bytes of its replacement string in
 * *at and *len (then *s is not to be used).
 */
int tf_subst_init(tf_subst *s, const char *t, size_t n, uint32_t nargs,
                  size_t *at, size_t *len);

/* The problem a TF_SUBST_* code names, for people. */
const char *tf_subst_problem(int code);

/*
 * The command of the job with sequence number seq and arguments
 * args[0..s->nargs). Writes at most cap bytes of it into out (no NUL; out
 * may be NULL when cap is 0) and returns its whole length, so that a
 * first call with cap 0 sizes the buffer for the second.
 */
size_t tf_subst_expand(const tf_subst *s, const tf_subst_arg *args,
                       uint64_t seq, char *out, size_t cap);

#endif
