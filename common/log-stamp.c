/* SPDX-License-Identifier: MIT */
#include <config.h>

#include "log-stamp.h"

#include <stdio.h>
#include <time.h>

void log_stamp(char buf[LOG_STAMP_LEN]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[24];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, LOG_STAMP_LEN, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}
