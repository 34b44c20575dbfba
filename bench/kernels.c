/*
 * bench/kernels.c: the choices of runtime/ibrt_kernels.h and ibrt_rng.h,
 * measured on the shapes the paper's specs produce (built like a trainer:
 * -O2 -march=native, OpenBLAS on one thread).  For each product, the time
 * per call through OpenBLAS (ibrt_mm) and through the inline small kernel
 * (ibrt_mm_small), best of 5 runs of 20000 calls; then the row softmax
 * a row at a time against eight rows at once (ibrt_softmax_rows), and
 * normals one by one (ibrt_rng_normal) against the lanes
 * (ibrt_rng_normals).  The compiler's
 * routing rule (compiler/emit_tape.c, MM_SMALL and MM_NARROW) follows these.
 */
#include <stdio.h>
#include <time.h>

#include "ibrt_kernels.h"
#include "ibrt_rng.h"

enum { REPS = 5, CALLS = 20000 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double a[16384], b[16384], c[16384], x[4096];
static volatile double sink;

/* best time per call in microseconds of BODY, run CALLS times */
#define BEST(out, BODY)                                                                                                \
    do {                                                                                                               \
        out = 1e30;                                                                                                    \
        for (int rep = 0; rep < REPS; rep++) {                                                                         \
            double t0 = now();                                                                                         \
            for (int call = 0; call < CALLS; call++) {                                                                 \
                BODY;                                                                                                  \
                __asm__ volatile("" ::: "memory");                                                                     \
            }                                                                                                          \
            double t = (now() - t0) / CALLS * 1e6;                                                                     \
            out = t < out ? t : out;                                                                                   \
        }                                                                                                              \
        sink = c[1] + x[1];                                                                                            \
    } while (0)

/* one product shape through both kernels; nb per-sample blocks when each > 0 */
#define PRODUCT(label, TA, TB, M, N, K, LDA, LDB, NB)                                                                 \
    do {                                                                                                               \
        double tb_, ts_;                                                                                               \
        BEST(tb_, for (int s = 0; s < (NB); s++) ibrt_mm(TA, TB, M, N, K, a + s * 64, LDA, b + s * 64, LDB, 0.0,      \
                                                           c + s * 64, N));                                            \
        BEST(ts_, for (int s = 0; s < (NB); s++) ibrt_mm_small(TA, TB, M, N, K, a + s * 64, LDA, b + s * 64, LDB,     \
                                                                 0.0, c + s * 64, N));                                 \
        printf("%-44s %10.3f %10.3f %8.2fx\n", label, tb_, ts_, tb_ / ts_);                                           \
    } while (0)

int main(void)
{
    for (int i = 0; i < 16384; i++) {
        a[i] = 1.0 / (i + 1);
        b[i] = 1.0 / (i + 2);
    }
    printf("%-44s %10s %10s %9s\n", "product (row-major, C = op(A) op(B))", "BLAS us", "inline us", "ratio");
    PRODUCT("E2 stacked X Wq: 128x16 @ 16x8", 0, 0, 128, 8, 16, 16, 8, 1);
    PRODUCT("stacked adjoint dC B': 128x8 @ (16x8)'", 0, 1, 128, 16, 8, 8, 8, 1);
    PRODUCT("E2 gradient: (128x16)' @ 128x8", 1, 0, 16, 8, 128, 16, 8, 1);
    PRODUCT("E2 per sample Q K': 16 x (8x8 @ (8x8)')", 0, 1, 8, 8, 8, 8, 8, 16);
    PRODUCT("E2 per sample A V: 16 x (8x8 @ 8x8)", 0, 0, 8, 8, 8, 8, 8, 16);
    PRODUCT("E3 U V': 20x20 @ (20x20)'", 0, 1, 20, 20, 20, 20, 20, 1);
    PRODUCT("E5 A w (gemv): 60x200 @ 200x1", 0, 0, 60, 1, 200, 200, 1, 1);

    double t1, t2;
    BEST(t1, for (int s = 0; s < 16; s++) for (int i = 0; i < 8; i++) ibrt_softmax_row(8, a + s * 64 + i * 8,
                                                                                      c + s * 64 + i * 8));
    BEST(t2, for (int s = 0; s < 16; s++) ibrt_softmax_rows(8, 8, a + s * 64, c + s * 64));
    printf("\n%-44s %10s %10s\n", "row softmax (E2: 16 x 8x8 per step)", "row by row", "8 rows");
    printf("%-44s %10.3f %10.3f %8.2fx\n", "  us per batch", t1, t2, t1 / t2);

    ibrt_rng r;
    ibrt_rng_seed(&r, 1);
    BEST(t1, for (int i = 0; i < 2048; i++) x[i] = ibrt_rng_normal(&r));
    BEST(t2, ibrt_rng_normals(&r, x, 2048, 0, 1));
    printf("\n%-44s %10s %10s\n", "2048 normals (E2's inputs per step)", "one by one", "lanes");
    printf("%-44s %10.3f %10.3f %8.2fx\n", "  us per fill", t1, t2, t1 / t2);
    return 0;
}
