/* tensor_internal.h - helpers shared between kernel files of src/tensor; not public. */
#ifndef VIT_TENSOR_INTERNAL_H
#define VIT_TENSOR_INTERNAL_H
void vt__softmax_row(float *out, const float *in, int C);
#endif
