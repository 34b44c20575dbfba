/*
 * baseline.c: reference methods for the design outcome (ibrt_baseline.h).
 */
#include "ibrt_baseline.h"

#include <cblas.h>
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

/* The warm-started truncated SVT of A (n1 x n2, row-major, not destroyed)
 * by subspace iteration with Rayleigh-Ritz (ibrt_baseline.h): the state
 * carried from one soft-impute iteration to the next is the block of
 * right vectors V (n2 x b, orthonormal columns, row-major, ldv = kmax). */
typedef struct {
    size_t n1, n2, kmax, b;   /* kmax = min(n1, n2); b the block's width now */
    /* workspace, malloc'd by the caller, row-major with ld kmax: V (n2 x kmax) the block; Y (n1 x kmax) A V,
     * then its left singular vectors P; G (n2 x kmax) V W, then A' U; W (kmax x kmax) W' of Y's SVD;
     * s, tau, superb (kmax + 1 each): singular values, QR reflectors, dgesvd's superb */
    double *V, *Y, *G, *W, *s, *tau, *superb;
    ibrt_rng rng;             /* draws V's random columns (seeded 20100101 by the caller) */
    size_t truncated, full;   /* SVTs done each way */
    double residual_sum;      /* sum over truncated SVTs of ||R_c||_F */
} subspace;

enum { SUB_OVER = 8, SUB_MIN = 8, SUB_ITERS = 30 };

/* V <- an orthonormal basis of the columns of V (n2 x b, row-major, ld kmax) */
static int orthonormalise(subspace *S, size_t b)
{
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)S->n2, (lapack_int)b, S->V, (lapack_int)S->kmax,
                                     S->tau);
    if (info == 0)
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)S->n2, (lapack_int)b, (lapack_int)b, S->V,
                              (lapack_int)S->kmax, S->tau);
    return (int)info;
}

/* columns from..to of V drawn at random (a fresh start, or a block widened) */
static void random_columns(subspace *S, size_t from, size_t to)
{
    for (size_t i = 0; i < S->n2; i++)
        for (size_t j = from; j < to; j++)
            S->V[i * S->kmax + j] = ibrt_rng_normal(&S->rng);
}

/* Z = S_lambda(A) from the top singular triplets of A only, found by block
 * power iteration on A'A started from the previous call's right vectors:
 * each round takes the Ritz triplets of the block (Y = A V = P Sigma W',
 * u = P, v = V W), then R = A' U - V Sigma.  Since A V = U Sigma exactly
 * (to rounding) and V' R = 0, the triplets are exact for A + E with
 * E = -U_c R_c' (c: the triplets above lambda), ||E||_F = ||R_c||_F, and
 * S_lambda is nonexpansive in the Frobenius norm, so the result differs
 * from S_lambda(A) by at most ||R_c||_F, provided the block holds every
 * singular value above lambda (the Ritz values below lambda, at least
 * SUB_OVER of them, say so).  Rounds stop when ||R_c||_F <= 1e-10
 * ||A||_F; a block that would exceed kmax / 2, or no convergence in
 * SUB_ITERS rounds, falls back to the full SVD (svt).  Returns 0 or
 * LAPACK's info; *resid gets ||R_c||_F (0 after a full SVD). */
static int subspace_svt(subspace *S, const double *A, double lambda, double *Abuf, double *U, double *VT, double *Z,
                        double *resid)
{
    size_t n1 = S->n1, n2 = S->n2, kmax = S->kmax, ld = kmax;
    double fro = cblas_dnrm2((int)(n1 * n2), A, 1), tol = 1e-10 * fro;
    *resid = 0;
    for (int round = 0; round < SUB_ITERS && S->b <= kmax / 2; round++) {
        size_t b = S->b;
        /* Y = A V (n1 x b) and its thin SVD Y = P diag(s) W' (Y overwritten by P) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n1, (int)b, (int)n2, 1.0, A, (int)n2, S->V,
                    (int)ld, 0.0, S->Y, (int)ld);
        lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'O', 'S', (lapack_int)n1, (lapack_int)b, S->Y,
                                         (lapack_int)ld, S->s, NULL, 1, S->W, (lapack_int)ld, S->superb);
        if (info != 0)
            return (int)info;
        /* Ritz right vectors V W (into G), then R = A' U - (V W) diag(s) in place over A' U */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n2, (int)b, (int)b, 1.0, S->V, (int)ld, S->W,
                    (int)ld, 0.0, S->G, (int)ld);
        memcpy(S->V, S->G, sizeof(double) * n2 * ld);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n2, (int)b, (int)n1, 1.0, A, (int)n2, S->Y,
                    (int)ld, 0.0, S->G, (int)ld);
        size_t c = 0;
        while (c < b && S->s[c] > lambda)
            c++;
        double r2 = 0;
        for (size_t i = 0; i < n2; i++)
            for (size_t j = 0; j < c; j++) {
                double r = S->G[i * ld + j] - S->V[i * ld + j] * S->s[j];
                r2 += r * r;
            }
        if (c + SUB_OVER > b) {   /* too few Ritz values below lambda: widen the block */
            size_t nb = 2 * b > c + 2 * SUB_OVER ? 2 * b : c + 2 * SUB_OVER;
            if (nb > kmax / 2 + 1)
                break;
            memcpy(S->V, S->G, sizeof(double) * n2 * ld);
            random_columns(S, b, nb);
            S->b = nb;
            if (orthonormalise(S, nb) != 0)
                return -1;
            continue;
        }
        if (sqrt(r2) <= tol) {   /* Z = U_c diag(s - lambda) V_c' */
            for (size_t i = 0; i < n1; i++)
                for (size_t j = 0; j < c; j++)
                    S->Y[i * ld + j] *= S->s[j] - lambda;
            memset(Z, 0, sizeof(double) * n1 * n2);
            if (c > 0)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n1, (int)n2, (int)c, 1.0, S->Y, (int)ld,
                            S->V, (int)ld, 0.0, Z, (int)n2);
            /* the next call starts from these vectors, c + SUB_OVER of them */
            S->b = c + SUB_OVER > SUB_MIN ? c + SUB_OVER : SUB_MIN;
            S->truncated++;
            S->residual_sum += sqrt(r2);
            *resid = sqrt(r2);
            return 0;
        }
        /* another round of the power iteration: V = orth(A' U) */
        memcpy(S->V, S->G, sizeof(double) * n2 * ld);
        if (orthonormalise(S, b) != 0)
            return -1;
    }
    /* the full SVD, whose leading right vectors start the next call */
    memcpy(Abuf, A, sizeof(double) * n1 * n2);
    int info = svt(n1, n2, Abuf, lambda, S->s, U, VT, S->superb, Z);
    if (info != 0)
        return info;
    size_t c = 0;
    while (c < kmax && S->s[c] > lambda)
        c++;
    S->b = c + SUB_OVER > SUB_MIN ? c + SUB_OVER : SUB_MIN;
    if (S->b > kmax)
        S->b = kmax;
    for (size_t i = 0; i < n2; i++)
        for (size_t j = 0; j < S->b; j++)
            S->V[i * ld + j] = VT[j * n2 + i];
    S->full++;
    return 0;
}

ibrt_status ibrt_baseline_completion(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                     ibrt_completion_report *rep, ibrt_error *err)
{
    return ibrt_baseline_completion_svt(n1, n2, M, mask, sweep,
                                        n1 * n2 <= IBRT_BASELINE_FULL_SVD_MAX ? IBRT_BASELINE_SVT_FULL : IBRT_BASELINE_SVT_SUBSPACE, rep,
                                        err);
}

ibrt_status ibrt_baseline_completion_svt(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                         ibrt_baseline_svt method, ibrt_completion_report *rep, ibrt_error *err)
{
    size_t N = n1 * n2, k = n1 < n2 ? n1 : n2;
    double *A = malloc(sizeof(double) * N), *Z = calloc(N, sizeof(double)), *U = malloc(sizeof(double) * n1 * k),
           *VT = malloc(sizeof(double) * k * n2), *s = malloc(sizeof(double) * (k + 1)),
           *superb = malloc(sizeof(double) * (k + 1)), *Abuf = malloc(sizeof(double) * N);
    subspace S = {.n1 = n1, .n2 = n2, .kmax = k, .b = SUB_MIN < k ? SUB_MIN : k};
    S.V = malloc(sizeof(double) * n2 * k);
    S.G = malloc(sizeof(double) * n2 * k);
    S.Y = malloc(sizeof(double) * n1 * k);
    S.W = malloc(sizeof(double) * k * k);
    S.s = malloc(sizeof(double) * (k + 1));
    S.tau = malloc(sizeof(double) * (k + 1));
    S.superb = malloc(sizeof(double) * (k + 1));
    ibrt_rng_seed(&S.rng, 20100101);   /* the random start: any fixed seed */
    ibrt_status st = IBRT_OK;
    memset(rep, 0, sizeof *rep);
    if (!A || !Z || !U || !VT || !s || !superb || !Abuf || !S.V || !S.G || !S.Y || !S.W || !S.s || !S.tau ||
        !S.superb) {
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
    random_columns(&S, 0, S.b);
    if (method == IBRT_BASELINE_SVT_SUBSPACE && orthonormalise(&S, S.b) != 0)
        goto svd_failed;
    for (size_t l = 0; l < rep->lambdas; l++) {
        double lambda = lmax * pow(1e-4, (double)l / (double)(rep->lambdas - 1));
        for (int it = 0; it < 300; it++) {
            for (size_t e = 0; e < N; e++)
                A[e] = mask[e] != 0 ? M[e] : Z[e];
            double resid;
            if (method == IBRT_BASELINE_SVT_SUBSPACE) {
                if (subspace_svt(&S, A, lambda, Abuf, U, VT, Z, &resid) != 0)
                    goto svd_failed;
                continue;
            }
            /* the full SVD is a function of A and lambda alone: an input
             * equal bit for bit to the previous step's gives the same Z,
             * and so do all the steps left at this lambda */
            if (it > 0 && memcmp(A, Abuf, sizeof(double) * N) == 0)
                break;
            memcpy(Abuf, A, sizeof(double) * N);
            if (svt(n1, n2, A, lambda, s, U, VT, superb, Z) != 0)
                goto svd_failed;
            S.full++;
        }
        double d = 0;
        for (size_t e = 0; e < N; e++)
            d += (Z[e] - M[e]) * (Z[e] - M[e]);
        if (sqrt(d) / norm < rep->best_error) {
            rep->best_error = sqrt(d) / norm;
            rep->best_lambda = lambda;
        }
    }
    rep->svt_truncated = S.truncated;
    rep->svt_full = S.full;
    rep->svt_residual_sum = S.residual_sum;
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
    free(Abuf);
    free(S.V);
    free(S.G);
    free(S.Y);
    free(S.W);
    free(S.s);
    free(S.tau);
    free(S.superb);
    return st;
}
