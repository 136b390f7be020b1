/* Instruction-set paths and their runtime dispatch.
 *
 * The CPU is asked once (cpuid, on first use); the best path it supports
 * is used unless TRUENO_ISA=scalar|sse|avx2|avx512|neon names another
 * supported one (tests and trueno-bench force each path this way, or call
 * the *_isa functions directly).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TRUENO_CPU_H
#define TRUENO_CPU_H

#include <stdbool.h>

enum trueno_isa {
  TRUENO_ISA_SCALAR = 0, /* portable C */
  TRUENO_ISA_SSE,        /* x86-64 SSE4.2 (SSSE3 shuffles, SSE2 compares) */
  TRUENO_ISA_AVX2,       /* x86-64 AVX2 + BMI1 */
  TRUENO_ISA_AVX512,     /* x86-64 AVX-512 F/BW/VL + BMI1/BMI2 */
  TRUENO_ISA_NEON,       /* AArch64 Advanced SIMD */
  TRUENO_ISA_COUNT
};

const char *trueno_isa_name(enum trueno_isa isa);
/* Parses a name from trueno_isa_name; -EINVAL if unknown. */
int trueno_isa_parse(const char *name, enum trueno_isa *isa);
/* Built into this binary and supported by this CPU. */
bool trueno_isa_supported(enum trueno_isa isa);
/* The best supported path. */
enum trueno_isa trueno_isa_best(void);
/* The path the dispatched functions use: $TRUENO_ISA if it names a
 * supported path, else the best one.  Decided once. */
enum trueno_isa trueno_isa_active(void);

#endif
