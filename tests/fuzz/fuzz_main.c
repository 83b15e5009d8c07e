/* fuzz_main.c - the libFuzzer entry point of one target, VT_FUZZ_FN (set by tests/fuzz/meson.build) */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return VT_FUZZ_FN(data, size); }
