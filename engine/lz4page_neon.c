/* The lz4page codec and page classifier, neon path (see lz4page_impl.h).
 * The instruction set is chosen here with target pragmas rather than with
 * per-file compiler flags, so every build of the engine (make, the
 * sanitizer builds, the fuzzers, the cross build) compiles all paths the
 * same way; cpu.c only calls a path the CPU supports.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__aarch64__)
#include <arm_neon.h>

#define LZ4P_SFX neon
#define LZ4P_NEON 1
#include "lz4page_impl.h"
#endif
