/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "restart.h"

int ublk_restart_fast(const double *lived_s, int n) {
  int fast = 0;
  for (int i = n - 1; i >= 0 && lived_s[i] < UBLK_RESTART_FAST_S; i--)
    fast++;
  return fast;
}

int ublk_restart_give_up(const double *lived_s, int n) {
  return ublk_restart_fast(lived_s, n) >= UBLK_RESTART_MAX_FAST;
}

unsigned ublk_restart_delay_ms(int fast) {
  if (fast <= 1)
    return 0;
  unsigned ms = 100u << (fast - 2 > 5 ? 5 : fast - 2);
  return ms > 2000 ? 2000 : ms;
}
