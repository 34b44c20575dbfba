/*
 * bench/blasrate.c: the machine's own BLAS rates, one thread, as the
 * yardstick of bench/sizes.sh: dgemm on n x n matrices (compute-bound)
 * and dgemv on an n x n matrix (memory-bound), best of 5 runs each, in
 * GFLOP/s (2 n^3 and 2 n^2 flops).  Prints "dgemm G" and "dgemv G".
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
    enum { N = 1000, NV = 4000 };
    double *a = malloc(sizeof(double) * NV * NV), *b = malloc(sizeof(double) * N * N),
           *c = malloc(sizeof(double) * N * N), *x = malloc(sizeof(double) * NV), *y = malloc(sizeof(double) * NV);
    if (!a || !b || !c || !x || !y)
        return 1;
    for (long i = 0; i < (long)NV * NV; i++)
        a[i] = (double)(i % 7) - 3;
    for (long i = 0; i < (long)N * N; i++)
        b[i] = c[i] = (double)(i % 5) - 2;
    for (long i = 0; i < NV; i++)
        x[i] = y[i] = 1;
    double gemm = 1e30, gemv = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0, a, N, b, N, 0.0, c, N);
        double t1 = now();
        for (int q = 0; q < 10; q++)
            cblas_dgemv(CblasRowMajor, CblasNoTrans, NV, NV, 1.0, a, NV, x, 1, 0.0, y, 1);
        double t2 = now();
        gemm = t1 - t0 < gemm ? t1 - t0 : gemm;
        gemv = (t2 - t1) / 10 < gemv ? (t2 - t1) / 10 : gemv;
    }
    printf("dgemm %.3f\ndgemv %.3f\n", 2.0 * N * N * N / gemm / 1e9, 2.0 * NV * NV / gemv / 1e9);
    free(a);
    free(b);
    free(c);
    free(x);
    free(y);
    return 0;
}
