/*
 * baseline.c: reference methods for the design outcome (ibrt_baseline.h).
 */
#include "ibrt_baseline.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Z = U diag(max(s - lambda, 0)) V' from the thin SVD of A (A destroyed). */
static int svt(size_t n1, size_t n2, double *A, double lambda, double *s, double *U, double *VT, double *superb,
               double *Z)
{
    size_t k = n1 < n2 ? n1 : n2;
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', (lapack_int)n1, (lapack_int)n2, A, (lapack_int)n2, s,
                                     U, (lapack_int)k, VT, (lapack_int)n2, superb);
    if (info != 0)
        return (int)info;
    memset(Z, 0, sizeof(double) * n1 * n2);
    for (size_t q = 0; q < k; q++) {
        double t = s[q] - lambda;
        if (t <= 0)
            break;   /* singular values are descending */
        for (size_t i = 0; i < n1; i++) {
            double a = t * U[i * k + q];
            for (size_t j = 0; j < n2; j++)
                Z[i * n2 + j] += a * VT[q * n2 + j];
        }
    }
    return 0;
}

ibrt_status ibrt_baseline_completion(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                     ibrt_completion_report *rep, ibrt_error *err)
{
    size_t N = n1 * n2, k = n1 < n2 ? n1 : n2;
    double *A = malloc(sizeof(double) * N), *Z = calloc(N, sizeof(double)), *U = malloc(sizeof(double) * n1 * k),
           *VT = malloc(sizeof(double) * k * n2), *s = malloc(sizeof(double) * (k + 1)),
           *superb = malloc(sizeof(double) * (k + 1));
    ibrt_status st = IBRT_OK;
    memset(rep, 0, sizeof *rep);
    if (!A || !Z || !U || !VT || !s || !superb) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        st = IBRT_ENOMEM;
        goto done;
    }
    double norm = 0;
    for (size_t e = 0; e < N; e++) {
        norm += M[e] * M[e];
        rep->observed += mask[e] != 0;
    }
    norm = sqrt(norm);
    /* the rank of M and the rows / columns it leaves underdetermined */
    memcpy(A, M, sizeof(double) * N);
    if (svt(n1, n2, A, 0, s, U, VT, superb, Z) != 0)
        goto svd_failed;
    for (size_t q = 0; q < k; q++)
        rep->rank += s[q] > 1e-9 * s[0];
    for (size_t i = 0; i < n1; i++) {
        size_t c = 0;
        for (size_t j = 0; j < n2; j++)
            c += mask[i * n2 + j] != 0;
        rep->rows_under += c < rep->rank;
    }
    for (size_t j = 0; j < n2; j++) {
        size_t c = 0;
        for (size_t i = 0; i < n1; i++)
            c += mask[i * n2 + j] != 0;
        rep->cols_under += c < rep->rank;
    }
    if (!sweep) {
        rep->best_error = rep->best_lambda = NAN;
        goto done;
    }
    /* the lambda grid starts where soft-impute returns 0 */
    for (size_t e = 0; e < N; e++)
        A[e] = mask[e] != 0 ? M[e] : 0;
    if (svt(n1, n2, A, 0, s, U, VT, superb, Z) != 0)
        goto svd_failed;
    double lmax = s[0];
    memset(Z, 0, sizeof(double) * N);
    rep->best_error = INFINITY;
    rep->lambdas = 30;
    for (size_t l = 0; l < rep->lambdas; l++) {
        double lambda = lmax * pow(1e-4, (double)l / (double)(rep->lambdas - 1));
        for (int it = 0; it < 300; it++) {
            for (size_t e = 0; e < N; e++)
                A[e] = mask[e] != 0 ? M[e] : Z[e];
            if (svt(n1, n2, A, lambda, s, U, VT, superb, Z) != 0)
                goto svd_failed;
        }
        double d = 0;
        for (size_t e = 0; e < N; e++)
            d += (Z[e] - M[e]) * (Z[e] - M[e]);
        if (sqrt(d) / norm < rep->best_error) {
            rep->best_error = sqrt(d) / norm;
            rep->best_lambda = lambda;
        }
    }
    goto done;
svd_failed:
    snprintf(err->msg, sizeof err->msg, "soft-impute: SVD did not converge (LAPACKE_dgesvd)");
    st = IBRT_EVALUE;
done:
    free(A);
    free(Z);
    free(U);
    free(VT);
    free(s);
    free(superb);
    return st;
}
