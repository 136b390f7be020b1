/* The lz4page codec and page classifier, avx512 path (see lz4page_impl.h).
 * The instruction set is chosen here with target pragmas rather than with
 * per-file compiler flags, so every build of the engine (make, the
 * sanitizer builds, the fuzzers, the cross build) compiles all paths the
 * same way; cpu.c only calls a path the CPU supports.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>

#include "classify.h"
#include "lz4page.h"

#if defined(__clang__)
#pragma clang attribute push(                                                  \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx2,bmi,bmi2"))),        \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,bmi,bmi2")
#endif
#define LZ4P_SFX avx512
#define LZ4P_AVX512 1
#include "lz4page_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
