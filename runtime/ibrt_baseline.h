/*
 * ibrt_baseline.h: reference methods a designed model is compared with
 * (module prefix ibrt_baseline_).
 *
 * Matrix completion (E3): nuclear-norm completion by soft-impute, and the
 * identifiability of the observation pattern.  A rank-r matrix M = P S Q'
 * is determined by its observed entries only if every row and every
 * column has at least r of them: row i of M is a combination of the r
 * rows of S Q', and fewer than r observed entries cannot fix its r
 * coefficients.  With such a row or column M is not determined by the
 * data, and no method can be counted on to recover it: that tells a
 * failure of the implicit bias from a lack of data.
 */
#ifndef IBRT_BASELINE_H
#define IBRT_BASELINE_H

#include "ibrt.h"

typedef struct {
    double best_error;      /* min over the lambda grid of ||Z - M||_F / ||M||_F */
    double best_lambda;
    size_t lambdas;         /* grid size */
    size_t rank;            /* numerical rank of M (sigma > 1e-9 sigma_1) */
    size_t observed;        /* observed entries */
    size_t rows_under, cols_under;   /* rows / columns with fewer than rank observed entries */
    size_t svt_truncated, svt_full;  /* soft-impute steps computed by the truncated SVT and by the full SVD */
    double svt_residual_sum;         /* sum of the truncated SVTs' residuals ||R_c||_F (below) */
} ibrt_completion_report;

/* How each soft-impute step's singular value thresholding S_lambda(A)
 * (A n1 x n2) is computed.
 * FULL: the thin SVD of A (LAPACKE_dgesvd), all min(n1, n2) triplets;
 * once a step's input A equals the previous step's bit for bit, the
 * iterate is a fixed point and the steps left at that lambda are not
 * recomputed (they would give the same bits).
 * SUBSPACE: only the triplets above lambda, by block power iteration on
 * A'A with Rayleigh-Ritz, started from the previous step's right vectors
 * (consecutive iterates differ little, so one or two rounds of two
 * products n1 x n2 by n2 x b usually do, b = the triplets above lambda
 * plus 8).  The Ritz triplets (u_j, s_j, v_j) satisfy A V = U S and
 * A' U = V S + R with V' R = 0, so they are exact triplets of A + E,
 * E = -U_c R_c' over the c triplets above lambda; S_lambda is nonexpansive
 * in the Frobenius norm, so the step's result is within ||R_c||_F of the
 * exact S_lambda(A), given that the block holds every singular value above
 * lambda (it keeps at least 8 Ritz values below lambda).  Rounds stop at
 * ||R_c||_F <= 1e-10 ||A||_F.  Soft-impute's step
 * Z -> S_lambda(P_obs M + P_unobs Z) is nonexpansive too, so the whole
 * sweep ends within svt_residual_sum of the exact sweep's iterate (at each
 * lambda), and best_error within svt_residual_sum / ||M||_F of the full
 * method's.  A step whose block would pass min(n1, n2) / 2, or that does
 * not converge in 30 rounds, takes the full SVD instead. */
typedef enum { IBRT_BASELINE_SVT_FULL, IBRT_BASELINE_SVT_SUBSPACE } ibrt_baseline_svt;
/* ibrt_baseline_completion uses FULL up to this many entries (every size
 * the trainers sweep by default, whose outputs it thus keeps) and
 * SUBSPACE above. */
enum { IBRT_BASELINE_FULL_SVD_MAX = 64 * 64 };

/* Soft-impute (Mazumder, Hastie & Tibshirani, JMLR 2010): iterate
 * Z <- S_lambda(P_obs(M) + P_unobs(Z)), S_lambda soft-thresholding the
 * singular values by lambda, on a geometric grid of 30 lambdas from
 * sigma_1(P_obs M) down to 1e-4 of it, warm-started, 300 iterations each
 * (each an SVT, below).  lambda is chosen by the truth (an oracle): the best
 * error is a lower bound for nuclear-norm completion with lambda tuned on
 * the data.  M and mask are n1 x n2 row-major (mask 1: observed).  The
 * sweep costs 9000 SVDs of n1 x n2; with sweep false only the report's
 * counts (rank, observed, underdetermined rows and columns: two SVDs) are
 * computed, and best_error, best_lambda are NAN, lambdas 0.  The SVTs
 * are FULL up to IBRT_BASELINE_FULL_SVD_MAX entries, SUBSPACE above. */
ibrt_status ibrt_baseline_completion(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                     ibrt_completion_report *rep, ibrt_error *err);
/* The same with the SVT method chosen by the caller. */
ibrt_status ibrt_baseline_completion_svt(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                         ibrt_baseline_svt method, ibrt_completion_report *rep, ibrt_error *err);

#endif
