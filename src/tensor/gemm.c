/* gemm.c - GEMM through OpenBLAS and the Linear layer built on it. */
#include "tensor.h"
#include <cblas.h>
#include <string.h>

void vt_sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* C = beta C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* inp (BT, C), weight (OC, C), bias (OC) -> out (BT, OC) */
void vt_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int BT, int C, int OC)
{
    if (bias) {
        #pragma omp parallel for schedule(static)
        for (int r = 0; r < BT; r++) memcpy(out + (size_t)r * OC, bias, (size_t)OC * sizeof(float));
    }
    vt_sgemm(false, true, BT, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

/* dout (BT, OC) -> dinp (BT, C) (+)= dout W; dweight (OC, C) += dout^T inp; dbias (OC) += sum_r dout */
void vt_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int BT, int C, int OC, bool acc)
{
    if (dinp) vt_sgemm(false, false, BT, C, OC, 1.0f, dout, OC, weight, C, acc ? 1.0f : 0.0f, dinp, C);
    if (dweight) vt_sgemm(true, false, OC, C, BT, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) vt_bias_add_backward(dbias, dout, BT, OC);
}
