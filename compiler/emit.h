/*
 * emit.h: code generation.  Emits a standalone C11 training program for a
 * checked spec: every model of the spec (the designed one, the spec's own
 * model, each baseline) lowered to forward and reverse-mode code over a
 * batch of samples in fixed-size buffers (values of the parameters alone
 * hoisted out of the batch, products through CBLAS), plain SGD, traces,
 * metrics and checks, linked against libibrt (runtime/ibrt.h).  The
 * program's flags: --steps, --seed, --seeds, --out, --quiet, --help
 * (ibrt_opts_parse) and --gradcheck (analytic gradient of every model
 * against central differences at its initial point; exit status 5 on
 * failure, 4 when a check of a training run fails).
 */
#ifndef IBC_EMIT_H
#define IBC_EMIT_H

#include "design.h"
#include "ibc.h"
#include "sym.h"

/* Writes the trainer for spec to out.  design may be NULL (no design
 * target); derivation is the symbolic derivation of the spec's own model.
 * Returns false after a located error for a construct code generation
 * does not support. */
bool emit_program(FILE *out, const ibc_spec *spec, const design_result *design, const sym_derivation *derivation,
                  ibc_diag *diag);

/* A C string literal for arbitrary bytes: quotes, backslashes, control
 * and non-ASCII bytes escaped, so spec text can never inject C. */
void emit_c_string(FILE *out, const char *s);

#endif
