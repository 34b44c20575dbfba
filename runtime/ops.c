/*
 * ops.c: fixed linear operators applied in O(n) (and the DCT basis).
 * diff: z_0 = w_0, z_i = w_i - w_(i-1); its inverse is the cumulative
 * sum; backprop needs the transposes (diff' and the reverse cumsum).
 */
#include "ibrt_ops.h"

#include <cblas.h>

#include <math.h>

void ibrt_op_diff(size_t n, const double *in, double *out)
{
    for (size_t i = n; i-- > 1;)
        out[i] = in[i] - in[i - 1];
    if (n)
        out[0] = in[0];
}

void ibrt_op_diff_T(size_t n, const double *in, double *out)
{
    for (size_t i = 0; i + 1 < n; i++)
        out[i] = in[i] - in[i + 1];
    if (n)
        out[n - 1] = in[n - 1];
}

void ibrt_op_cumsum(size_t n, const double *in, double *out)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = s += in[i];
}

void ibrt_op_cumsum_T(size_t n, const double *in, double *out)
{
    double s = 0;
    for (size_t i = n; i-- > 0;)
        out[i] = s += in[i];
}

/* Orthonormal DCT-II: row k = c_k cos(pi (i + 1/2) k / n), c_0 = sqrt(1/n),
 * c_k = sqrt(2/n).  The argument is pi (2i + 1) k / (2n) with (2i + 1) k
 * reduced modulo 4n in integers first (a period of the cosine): the
 * cosine of the unreduced argument, up to pi n, is off by about n ulps
 * (1.7e-13 relative at n = 1000, against the FFT of the PyTorch export). */
void ibrt_op_dct_matrix(size_t n, double *out)
{
    const double pi = 3.14159265358979323846;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < n; i++) {
            size_t r = ((2 * i + 1) * k) % (4 * n);
            out[k * n + i] = sqrt((k ? 2.0 : 1.0) / (double)n) * cos(pi * (double)r / (double)(2 * n));
        }
}

void ibrt_op_diag(size_t n, const double *d, const double *in, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = d[i] * in[i];
}

void ibrt_op_diff_open(size_t n, const double *in, double *out)
{
    for (size_t i = 0; i + 1 < n; i++)
        out[i] = in[i + 1] - in[i];
}

/* (D'z)_0 = -z_0, (D'z)_i = z_(i-1) - z_i, (D'z)_(n-1) = z_(n-2) */
void ibrt_op_diff_open_T(size_t n, const double *in, double *out)
{
    if (n == 0)
        return;
    if (n == 1) {
        out[0] = 0;
        return;
    }
    out[0] = -in[0];
    for (size_t i = 1; i + 1 < n; i++)
        out[i] = in[i - 1] - in[i];
    out[n - 1] = in[n - 2];
}

void ibrt_op_dct_apply(size_t n, const double *C, int trans, const double *in, double *out)
{
    if (n == 0)
        return;
    cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, (int)n, (int)n, 1.0, C, (int)n, in, 1, 0.0, out, 1);
}
