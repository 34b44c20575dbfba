/*
 * ibrt_ops.h: fixed operators not declared in ibrt.h.  diag(d) scales
 * entrywise (its own transpose); diff_open is the (n-1) x n difference
 * z_i = w_(i+1) - w_i of the builtin diff_open(n), singular, offered for
 * penalties, with its transpose (n outputs).  The dense DCT is applied
 * with cblas_dgemv from the matrix of ibrt_op_dct_matrix (O(n^2); a fast
 * transform is not worth it at the paper's sizes).  None allocate.
 */
#ifndef IBRT_OPS_H
#define IBRT_OPS_H

#include "ibrt.h"

void ibrt_op_diag(size_t n, const double *d, const double *in, double *out);
void ibrt_op_diff_open(size_t n, const double *in, double *out);     /* in: n, out: n - 1 */
void ibrt_op_diff_open_T(size_t n, const double *in, double *out);   /* in: n - 1, out: n */
/* out = C in (trans = 0) or C' in (trans != 0), C from ibrt_op_dct_matrix. */
void ibrt_op_dct_apply(size_t n, const double *C, int trans, const double *in, double *out);

#endif
