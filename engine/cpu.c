/* SPDX-License-Identifier: MIT */
#include "cpu.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

static const char *const names[TRUENO_ISA_COUNT] = {
    [TRUENO_ISA_SCALAR] = "scalar", [TRUENO_ISA_SSE] = "sse",
    [TRUENO_ISA_AVX2] = "avx2",     [TRUENO_ISA_AVX512] = "avx512",
    [TRUENO_ISA_NEON] = "neon",
};

const char *trueno_isa_name(enum trueno_isa isa) {
  return (unsigned)isa < TRUENO_ISA_COUNT ? names[isa] : "unknown";
}

int trueno_isa_parse(const char *name, enum trueno_isa *isa) {
  for (unsigned i = 0; i < TRUENO_ISA_COUNT; i++) {
    if (strcmp(name, names[i]) == 0) {
      *isa = (enum trueno_isa)i;
      return 0;
    }
  }
  return -EINVAL;
}

/* Bit i set: path i usable.  0 = not asked yet. */
static _Atomic unsigned supported_mask;

static unsigned probe(void) {
  unsigned m = 1u << TRUENO_ISA_SCALAR;
#if defined(__x86_64__)
  /* libgcc's cpu model runs cpuid once and checks that the OS saves the
   * vector registers (xgetbv) before it reports AVX/AVX-512. */
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3"))
    m |= 1u << TRUENO_ISA_SSE;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi"))
    m |= 1u << TRUENO_ISA_AVX2;
  if (__builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi") &&
      __builtin_cpu_supports("bmi2"))
    m |= 1u << TRUENO_ISA_AVX512;
#elif defined(__aarch64__)
  m |= 1u << TRUENO_ISA_NEON; /* Advanced SIMD is part of AArch64 */
#endif
  return m;
}

static unsigned mask(void) {
  unsigned m = atomic_load_explicit(&supported_mask, memory_order_relaxed);
  if (!m) {
    m = probe();
    atomic_store_explicit(&supported_mask, m, memory_order_relaxed);
  }
  return m;
}

bool trueno_isa_supported(enum trueno_isa isa) {
  return (unsigned)isa < TRUENO_ISA_COUNT && (mask() >> isa & 1);
}

enum trueno_isa trueno_isa_best(void) {
  unsigned m = mask();
  for (int i = TRUENO_ISA_COUNT - 1; i > 0; i--)
    if (m >> i & 1)
      return (enum trueno_isa)i;
  return TRUENO_ISA_SCALAR;
}

static _Atomic int active = -1;

enum trueno_isa trueno_isa_active(void) {
  int a = atomic_load_explicit(&active, memory_order_relaxed);
  if (a >= 0)
    return (enum trueno_isa)a;
  enum trueno_isa isa = trueno_isa_best();
  const char *env = getenv("TRUENO_ISA");
  enum trueno_isa want;
  if (env && *env) {
    if (trueno_isa_parse(env, &want) == 0 && trueno_isa_supported(want))
      isa = want;
    else
      fprintf(stderr, "trueno: TRUENO_ISA=%s is not a supported path here; "
                      "using %s\n", env, trueno_isa_name(isa));
  }
  atomic_store_explicit(&active, (int)isa, memory_order_relaxed);
  return isa;
}
