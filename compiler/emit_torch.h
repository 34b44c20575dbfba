/*
 * emit_torch.h: the PyTorch export (`ibc emit --target torch`).
 *
 * Writes one Python module for a checked spec: a torch.nn.Module per model
 * of the C trainer (Designed, Vanilla, L1, or Model for a spec without a
 * design target), with the spec's parameter names, shapes and
 * initialisations (the same distributions; not the C trainer's random
 * stream), and `forward` computing the predictor from the same checked AST
 * the C trainer is lowered from, batch first; the spec's loss as the
 * trainer computes it; the design's reparameterisation as a module for
 * torch.nn.utils.parametrize.register_parametrization (structured
 * operators in O(n): cumsum and differences, diagonals; the DCT and
 * dense operators from the spec's files as matrices, as in the C code);
 * each model's derived dual slices (chi per torus family, C per GL
 * junction), balance ratios and predicted bias at its current parameters;
 * a writer of parameter snapshots in the layout `ibc verify` reads; the
 * derivation (`ibc derive`'s text) as the module's docstring.  Float64 by
 * default, any dtype by argument.  The module needs nothing beyond torch
 * and the Python standard library.
 *
 * Safety: every name and string of the spec reaches the Python file only
 * as an escaped string literal (ASCII, \\u escapes), inside a comment
 * scrubbed of line breaks and non-ASCII bytes, or, for parameter and input
 * names, as an identifier made safe (keywords, torch.nn.Module's own
 * attributes, the module's names and clashes get a trailing '_'; the map
 * from identifiers back to spec names is in the module).
 */
#ifndef IBC_EMIT_TORCH_H
#define IBC_EMIT_TORCH_H

#include "design.h"
#include "ibc.h"
#include "sym.h"

/* Writes the Python module for spec to out (design NULL without a design
 * target; derivation: of the spec's own model).  Returns false after a
 * located error for a construct the export does not support (the same
 * ones C code generation refuses). */
bool emit_torch(FILE *out, const ibc_spec *spec, const design_result *design, const sym_derivation *derivation,
                ibc_diag *diag);

#endif
