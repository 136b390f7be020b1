/* trueno-ocl host side: device choice, kernel build, batch transfers.
 *
 * A batch is cut into chunks (at most chunk_pages; on GPUs, big batches
 * into sub-chunks spread over several in-order queues, so one chunk's
 * transfers overlap another's kernels).  A chunk is: one write of the
 * pages, the compress kernel (a block per page into a fixed slot, a length
 * per page), a scan of the lengths and a pack of the blocks back to back on
 * the device, one read of the lengths and offsets, and, once the host
 * knows the total, one read of the packed blocks.  Only compressed bytes
 * come back.
 *
 * The compress kernel: lz4_compress_coop (a work-group of
 * TRUENO_OCL_COOP_L work-items a page, default 32) on GPUs, lz4_compress
 * (one work-item a page) on other devices; TRUENO_OCL_KERNEL=page|coop
 * forces one.  The same blocks in the same slots either way, so all that
 * follows is shared.
 *
 * Environment, for tuning on a new device: TRUENO_OCL_HASH_LOG (8..12, the
 * page kernel's table a work-item), TRUENO_OCL_COOP_HASH_LOG (8..12, the
 * coop kernel's table a page, default 10), TRUENO_OCL_COOP_STAGE=1 (the
 * coop kernel stages the page in local memory), TRUENO_OCL_WG (work-items
 * per group, page kernel), TRUENO_OCL_QUEUES (1..4), TRUENO_OCL_SUBCHUNK
 * (pages per sub-chunk), TRUENO_OCL_PROFILE=1 (stage times, chunks run one
 * at a time, printed to stderr at close).  opencl/gpu-check.sh measures
 * them on a GPU.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ocl_cache.h"
#include "trueno_ocl.h"
#include "lz4page_cl.h" /* trueno_ocl_source: opencl/lz4page.cl */

#define PAGE 4096u
#define SLOT PAGE           /* device slot per page: any block of cap <= 4096 */
#define MAX_CHUNK 65536u    /* pages per kernel launch */
#define SCAN_WG_MAX 256u
#define MAX_PINNED 16
#define MAX_QUEUES 4

struct pinned {
  void *ptr;
  cl_mem mem;
};

/* A queue and the device buffers of the chunks it runs. */
struct qset {
  cl_command_queue q;
  size_t cap_pages, cap_packed;
  cl_mem d_pages, d_slots, d_lens, d_offs, d_packed;
  uint32_t *h_offs;
  cl_event ev_offs;
  /* The chunk in flight: its pages, where its lengths went. */
  cl_uint n;
  size_t first;
};

enum { P_WRITE, P_COMP, P_SCAN, P_PACK, P_READ_OFFS, P_READ_PACKED, P_N };

struct trueno_ocl {
  pthread_mutex_t lock;
  cl_platform_id platform;
  cl_device_id device;
  cl_context ctx;
  cl_command_queue q; /* = qs[0].q */
  cl_program prog;
  cl_kernel k_comp, k_coop, k_scan, k_pack, k_dec;
  size_t wg, scan_wg;
  unsigned hash_log;
  int coop;                   /* compress with k_coop */
  unsigned coop_l, coop_hash_log, coop_stage;
  char kernel_name[96];
  size_t chunk_pages, sub_pages;
  unsigned nq;
  struct qset qs[MAX_QUEUES];
  /* Decompression's status per page (queue 0). */
  size_t cap_status;
  cl_mem d_status;
  int32_t *h_status;
  struct pinned pinned[MAX_PINNED];
  int profile;
  double prof[P_N];
  double prof_bytes, prof_wall;
  char name[256];
  int cached; /* the kernels came from the binary cache */
  char cache_note[4400];
};

static int cl_errno(cl_int e) {
  switch (e) {
  case CL_SUCCESS:
    return 0;
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
  case CL_OUT_OF_RESOURCES:
  case CL_OUT_OF_HOST_MEMORY:
  case CL_INVALID_BUFFER_SIZE:
    return -ENOMEM;
  case CL_DEVICE_NOT_FOUND:
  case CL_DEVICE_NOT_AVAILABLE:
  case -1001: /* CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found none */
    return -ENODEV;
  case CL_BUILD_PROGRAM_FAILURE:
  case CL_COMPILER_NOT_AVAILABLE:
  case CL_INVALID_PROGRAM_EXECUTABLE:
    return -ENOEXEC;
  default:
    return -EIO;
  }
}

static void dev_str(cl_device_id d, cl_device_info what, char *buf,
                    size_t cap) {
  buf[0] = 0;
  if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS)
    buf[0] = 0;
  buf[cap - 1] = 0;
}

static void plat_str(cl_platform_id p, cl_platform_info what, char *buf,
                     size_t cap) {
  buf[0] = 0;
  if (clGetPlatformInfo(p, what, cap, buf, NULL) != CL_SUCCESS)
    buf[0] = 0;
  buf[cap - 1] = 0;
}

/* Calls fn for each device of each platform until it returns nonzero. */
typedef int (*dev_fn)(void *arg, unsigned pi, unsigned di, cl_platform_id p,
                      cl_device_id d);
static int each_device(dev_fn fn, void *arg) {
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  if (e != CL_SUCCESS || np == 0)
    return -ENODEV;
  cl_platform_id plats[16];
  if (np > 16)
    np = 16;
  if (clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS)
    return -ENODEV;
  for (unsigned pi = 0; pi < np; pi++) {
    cl_uint nd = 0;
    cl_device_id devs[16];
    if (clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 16, devs, &nd) !=
        CL_SUCCESS)
      continue;
    for (unsigned di = 0; di < nd && di < 16; di++) {
      int r = fn(arg, pi, di, plats[pi], devs[di]);
      if (r)
        return r;
    }
  }
  return 0;
}

static int list_one(void *arg, unsigned pi, unsigned di, cl_platform_id p,
                    cl_device_id d) {
  FILE *f = ((void **)arg)[0];
  int *count = ((void **)arg)[1];
  char pn[128], dn[128], ver[128];
  cl_device_type t = 0;
  cl_ulong gmem = 0;
  cl_uint cus = 0;
  plat_str(p, CL_PLATFORM_NAME, pn, sizeof pn);
  dev_str(d, CL_DEVICE_NAME, dn, sizeof dn);
  dev_str(d, CL_DEVICE_VERSION, ver, sizeof ver);
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
  fprintf(f, "%u:%u %s / %s, %s, %s, %u compute units, %llu MiB\n", pi, di,
          pn, dn, t & CL_DEVICE_TYPE_GPU ? "GPU"
                  : t & CL_DEVICE_TYPE_CPU ? "CPU"
                                           : "other",
          ver, cus, (unsigned long long)(gmem >> 20));
  (*count)++;
  return 0;
}

int trueno_ocl_list(FILE *f) {
  int count = 0;
  void *arg[2] = {f, &count};
  int r = each_device(list_one, arg);
  return r ? r : count;
}

struct pick {
  const char *want;
  int pass; /* 0: GPUs only (default choice), 1: any device */
  cl_platform_id p;
  cl_device_id d;
};

static int pick_one(void *arg, unsigned pi, unsigned di, cl_platform_id p,
                    cl_device_id d) {
  struct pick *k = arg;
  int ok;
  if (!k->want || !*k->want) {
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    ok = k->pass == 1 || (t & CL_DEVICE_TYPE_GPU);
  } else {
    unsigned wp, wd;
    char tail;
    if (sscanf(k->want, "%u:%u%c", &wp, &wd, &tail) == 2) {
      ok = wp == pi && wd == di;
    } else {
      char pn[128], dn[128];
      plat_str(p, CL_PLATFORM_NAME, pn, sizeof pn);
      dev_str(d, CL_DEVICE_NAME, dn, sizeof dn);
      ok = strcasestr(pn, k->want) || strcasestr(dn, k->want);
    }
  }
  if (ok) {
    k->p = p;
    k->d = d;
  }
  return ok;
}

static int pick_device(const char *want, cl_platform_id *p, cl_device_id *d) {
  struct pick k = {.want = want};
  int r = each_device(pick_one, &k);
  if (r == 0 && (!want || !*want)) {
    k.pass = 1;
    r = each_device(pick_one, &k);
  }
  if (r < 0)
    return r;
  if (r == 0)
    return -ENODEV;
  *p = k.p;
  *d = k.d;
  return 0;
}

static unsigned env_unsigned(const char *name, unsigned def) {
  const char *v = getenv(name);
  return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static size_t pow2_floor(size_t x) {
  size_t p = 1;
  while (p * 2 <= x)
    p *= 2;
  return p;
}

/* Which compress kernel (TRUENO_OCL_KERNEL=page|coop) and the coop
 * kernel's shape.  On a GPU the coop kernel, with a table of 2^10 entries
 * and the page read through the cache: the smaller the group's local
 * memory, the more groups a multiprocessor runs.  On a CPU device (PoCL)
 * the coop kernel's barriers cost too much: the page kernel.  Figures:
 * docs/opencl.md. */
static void pick_kernel(struct trueno_ocl *o, int gpu) {
  const char *k = getenv("TRUENO_OCL_KERNEL");
  o->coop = k && *k ? strcmp(k, "coop") == 0 : gpu;
  unsigned l = env_unsigned("TRUENO_OCL_COOP_L", 32);
  o->coop_l = l >= 4 && l <= 256 ? (unsigned)pow2_floor(l) : 32;
  o->coop_hash_log = env_unsigned("TRUENO_OCL_COOP_HASH_LOG", 10);
  if (o->coop_hash_log < 8 || o->coop_hash_log > 12)
    o->coop_hash_log = 10;
  o->coop_stage = env_unsigned("TRUENO_OCL_COOP_STAGE", 0) != 0;
}

/* Table size and work-group size: a table of 2^hash_log u16 per work-item
 * in local memory, as large as 8 work-items a group allow (up to 2^12). */
static void pick_shapes(struct trueno_ocl *o) {
  cl_ulong lmem = 0;
  size_t maxwg = 1;
  cl_device_type t = 0;
  clGetDeviceInfo(o->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem,
                  NULL);
  clGetDeviceInfo(o->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg,
                  &maxwg, NULL);
  clGetDeviceInfo(o->device, CL_DEVICE_TYPE, sizeof t, &t, NULL);
  /* On a GPU, 8 work-items a group leaves room for 2^11-entry tables in
   * 48 KiB: larger tables mean fewer false candidates to check, so both
   * speed and ratio gain (docs/opencl.md). */
  size_t want_wg = 8;
  unsigned hl = 12;
  while (hl > 8 && ((size_t)2 << hl) * want_wg > lmem)
    hl--;
  o->hash_log = env_unsigned("TRUENO_OCL_HASH_LOG", hl);
  if (o->hash_log < 8 || o->hash_log > 12)
    o->hash_log = hl;
  size_t per = (size_t)2 << o->hash_log;
  size_t wg = lmem / per;
  if (wg > maxwg)
    wg = maxwg;
  if (wg > 64)
    wg = 64;
  wg = env_unsigned("TRUENO_OCL_WG", (unsigned)wg);
  o->wg = pow2_floor(wg ? wg : 1);
  o->scan_wg = pow2_floor(maxwg < SCAN_WG_MAX ? maxwg : SCAN_WG_MAX);
  /* A CPU device gains nothing from overlapping copies with kernels; on a
   * GPU, 4 queues of 4096-page sub-chunks overlap them best
   * (docs/opencl.md). */
  int gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
  o->nq = env_unsigned("TRUENO_OCL_QUEUES", gpu ? 4 : 1);
  if (o->nq < 1 || o->nq > MAX_QUEUES)
    o->nq = gpu ? 4 : 1;
  o->sub_pages = env_unsigned("TRUENO_OCL_SUBCHUNK", gpu ? 4096 : 0);
  o->profile = env_unsigned("TRUENO_OCL_PROFILE", 0) != 0;
  if (o->profile)
    o->nq = 1;
  pick_kernel(o, gpu);
}

/* The kernels of the program just built; wg shrunk to what they allow. */
static int make_kernels(struct trueno_ocl *o, const char **why) {
  struct {
    cl_kernel *k;
    const char *name;
  } ks[] = {{&o->k_comp, "lz4_compress"},
            {&o->k_coop, "lz4_compress_coop"},
            {&o->k_scan, "lz4_scan"},
            {&o->k_pack, "lz4_pack"},
            {&o->k_dec, "lz4_decompress"}};
  cl_int e;
  for (unsigned i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    *ks[i].k = clCreateKernel(o->prog, ks[i].name, &e);
    if (e != CL_SUCCESS) {
      *why = "kernel missing from the program";
      return -ENOEXEC;
    }
  }
  size_t kwg = 0;
  if (clGetKernelWorkGroupInfo(o->k_comp, o->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
      kwg && kwg < o->wg)
    o->wg = pow2_floor(kwg);
  if (clGetKernelWorkGroupInfo(o->k_scan, o->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
      kwg && kwg < o->scan_wg)
    o->scan_wg = pow2_floor(kwg);
  /* A device that cannot run a group of coop_l takes the page kernel. */
  if (o->coop &&
      (clGetKernelWorkGroupInfo(o->k_coop, o->device,
                                CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg,
                                NULL) != CL_SUCCESS ||
       kwg < o->coop_l))
    o->coop = 0;
  if (o->coop)
    snprintf(o->kernel_name, sizeof o->kernel_name,
             "coop (%u work-items a page, table 2^%u, page in %s memory)",
             o->coop_l, o->coop_hash_log, o->coop_stage ? "local" : "global");
  else
    snprintf(o->kernel_name, sizeof o->kernel_name,
             "page (one work-item a page)");
  return 0;
}

static void drop_program(struct trueno_ocl *o) {
  cl_kernel *ks[] = {&o->k_comp, &o->k_coop, &o->k_scan, &o->k_pack,
                     &o->k_dec};
  for (unsigned i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    if (*ks[i])
      clReleaseKernel(*ks[i]);
    *ks[i] = NULL;
  }
  if (o->prog)
    clReleaseProgram(o->prog);
  o->prog = NULL;
}

static int build_from_source(struct trueno_ocl *o, const char *src,
                             const char *opts, const char **why) {
  cl_int e;
  o->prog = clCreateProgramWithSource(o->ctx, 1, &src, NULL, &e);
  if (e != CL_SUCCESS) {
    *why = "cannot create the program";
    return cl_errno(e);
  }
  e = clBuildProgram(o->prog, 1, &o->device, opts, NULL, NULL);
  if (e != CL_SUCCESS) {
    static char msg[1100];
    char log[1000] = "";
    clGetProgramBuildInfo(o->prog, o->device, CL_PROGRAM_BUILD_LOG,
                          sizeof log, log, NULL);
    log[sizeof log - 1] = 0;
    for (char *c = log; *c; c++)
      if (*c == '\n')
        *c = ' ';
    snprintf(msg, sizeof msg, "kernel build failed: %.1000s", log);
    *why = msg;
    return -ENOEXEC;
  }
  return make_kernels(o, why);
}

/* A binary from the cache: the driver may still refuse it (another
 * driver's, or damaged in a way the file's hash cannot see). */
static int build_from_binary(struct trueno_ocl *o, const unsigned char *bin,
                             size_t len, const char *opts) {
  cl_int e, st = CL_SUCCESS;
  o->prog = clCreateProgramWithBinary(o->ctx, 1, &o->device, &len, &bin, &st,
                                      &e);
  if (e == CL_SUCCESS && st == CL_SUCCESS)
    e = clBuildProgram(o->prog, 1, &o->device, opts, NULL, NULL);
  const char *why;
  int r = e == CL_SUCCESS && st == CL_SUCCESS ? make_kernels(o, &why)
                                              : -ENOEXEC;
  if (r)
    drop_program(o);
  return r;
}

/* Everything the binary depends on, as text (see ocl_cache.h). */
static void cache_key(struct trueno_ocl *o, const char *src, const char *opts,
                      char *key, size_t cap) {
  char pn[128], pv[128], dn[128], dv[128], drv[128];
  plat_str(o->platform, CL_PLATFORM_NAME, pn, sizeof pn);
  plat_str(o->platform, CL_PLATFORM_VERSION, pv, sizeof pv);
  dev_str(o->device, CL_DEVICE_NAME, dn, sizeof dn);
  dev_str(o->device, CL_DEVICE_VERSION, dv, sizeof dv);
  dev_str(o->device, CL_DRIVER_VERSION, drv, sizeof drv);
  size_t n = strlen(src);
  snprintf(key, cap,
           "platform: %s\nplatform version: %s\ndevice: %s\n"
           "device version: %s\ndriver version: %s\noptions: %s\n"
           "source: %zu bytes, fnv1a64 %016llx",
           pn, pv, dn, dv, drv, opts, n,
           (unsigned long long)ocl_cache_fnv(OCL_CACHE_FNV_INIT, src, n));
  for (char *c = key; *c; c++) /* keep it a key of lines: no blank ones */
    if (*c == '\r')
      *c = ' ';
}

static int save_binary(struct trueno_ocl *o, const char *dir,
                       const char *key) {
  size_t len = 0;
  cl_int e = clGetProgramInfo(o->prog, CL_PROGRAM_BINARY_SIZES, sizeof len,
                              &len, NULL);
  if (e != CL_SUCCESS || len == 0)
    return -ENOTSUP;
  unsigned char *bin = malloc(len);
  if (!bin)
    return -ENOMEM;
  e = clGetProgramInfo(o->prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL);
  int r = e == CL_SUCCESS ? ocl_cache_save(dir, key, bin, len) : -ENOTSUP;
  free(bin);
  return r;
}

/* The cache's part of the log line: where the kernels came from. */
static void cache_note(struct trueno_ocl *o, const char *dir, int loaded,
                       int saved) {
  char *n = o->cache_note;
  size_t cap = sizeof o->cache_note;
  if (loaded == 0)
    snprintf(n, cap, "kernels from the cache in %s", dir);
  else if (!*dir)
    snprintf(n, cap, "kernels built, no cache");
  else if (loaded == -EPERM)
    snprintf(n, cap, "kernels built, cache %s refused: it (or its file) is "
             "not owned by this user or is writable by others", dir);
  else if (saved)
    snprintf(n, cap, "kernels built, not cached in %s: %s", dir,
             strerror(-saved));
  else
    snprintf(n, cap, "kernels built%s, cached in %s",
             loaded == -ENOENT ? "" : " (the cached binary was unusable)",
             dir);
}

static int build(struct trueno_ocl *o, const struct trueno_ocl_options *opt,
                 const char **why) {
  const char *extra = opt ? opt->extra_source : NULL;
  char *src = NULL, opts[128], key[2048], dir[4096];
  if (asprintf(&src, "%s%s", trueno_ocl_source, extra ? extra : "") < 0)
    return -ENOMEM;
  snprintf(opts, sizeof opts,
           "-DHASH_LOG=%u -DSLOT=%uu -DCOOP_L=%u -DCOOP_HASH_LOG=%u "
           "-DCOOP_STAGE=%u",
           o->hash_log, SLOT, o->coop_l, o->coop_hash_log, o->coop_stage);
  cache_key(o, src, opts, key, sizeof key);
  ocl_cache_resolve(opt ? opt->cache_dir : NULL, dir, sizeof dir);
  int loaded = -ENOENT, saved = 0, r;
  unsigned char *bin = NULL;
  size_t len = 0;
  if (*dir && (loaded = ocl_cache_load(dir, key, &bin, &len)) == 0)
    loaded = build_from_binary(o, bin, len, opts);
  free(bin);
  o->cached = loaded == 0;
  r = o->cached ? 0 : build_from_source(o, src, opts, why);
  if (!r && !o->cached && *dir)
    saved = save_binary(o, dir, key);
  cache_note(o, dir, loaded, saved);
  if (!r) { /* the log line says which compress kernel runs */
    size_t used = strlen(o->cache_note);
    snprintf(o->cache_note + used, sizeof o->cache_note - used,
             "; compress kernel %s", o->kernel_name);
  }
  free(src);
  return r;
}

int trueno_ocl_open(const struct trueno_ocl_options *opt,
                    struct trueno_ocl **out, const char **why) {
  const char *dummy;
  if (!why)
    why = &dummy;
  *why = "";
  struct trueno_ocl *o = calloc(1, sizeof *o);
  if (!o) {
    *why = "out of memory";
    return -ENOMEM;
  }
  pthread_mutex_init(&o->lock, NULL);
  int r = pick_device(opt ? opt->device : NULL, &o->platform, &o->device);
  if (r) {
    *why = opt && opt->device && *opt->device
               ? "no OpenCL device matches opencl-device"
               : "no OpenCL platform or device";
    goto fail;
  }
  char pn[120], dn[120];
  plat_str(o->platform, CL_PLATFORM_NAME, pn, sizeof pn);
  dev_str(o->device, CL_DEVICE_NAME, dn, sizeof dn);
  snprintf(o->name, sizeof o->name, "%s / %s", pn, dn);
  cl_bool little = CL_FALSE;
  clGetDeviceInfo(o->device, CL_DEVICE_ENDIAN_LITTLE, sizeof little, &little,
                  NULL);
  if (!little) {
    *why = "the device is big-endian";
    r = -ENODEV;
    goto fail;
  }
  cl_ulong maxalloc = 0;
  clGetDeviceInfo(o->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc,
                  &maxalloc, NULL);
  o->chunk_pages = MAX_CHUNK;
  while (o->chunk_pages > 64 && (cl_ulong)o->chunk_pages * PAGE > maxalloc)
    o->chunk_pages /= 2;
  pick_shapes(o);
  if (o->sub_pages == 0 || o->sub_pages > o->chunk_pages)
    o->sub_pages = o->chunk_pages;
  cl_int e;
  o->ctx = clCreateContext(NULL, 1, &o->device, NULL, NULL, &e);
  for (unsigned i = 0; i < o->nq && e == CL_SUCCESS; i++)
    o->qs[i].q = clCreateCommandQueue(
        o->ctx, o->device, o->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
  o->q = o->qs[0].q;
  if (e != CL_SUCCESS) {
    *why = "cannot create a context or queue";
    r = cl_errno(e);
    goto fail;
  }
  r = build(o, opt, why);
  if (r)
    goto fail;
  *out = o;
  return 0;
fail:
  trueno_ocl_close(o);
  return r;
}

static void release_mem(cl_mem *m) {
  if (*m)
    clReleaseMemObject(*m);
  *m = NULL;
}

static void release_qset(struct qset *s) {
  cl_mem *m[] = {&s->d_pages, &s->d_slots, &s->d_lens, &s->d_offs,
                 &s->d_packed};
  for (unsigned i = 0; i < sizeof m / sizeof m[0]; i++)
    release_mem(m[i]);
  free(s->h_offs);
  s->h_offs = NULL;
  s->cap_pages = s->cap_packed = 0;
}

static void print_profile(struct trueno_ocl *o) {
  static const char *const names[P_N] = {"write pages", "compress kernel",
                                         "scan kernel", "pack kernel",
                                         "read offsets", "read blocks"};
  double gb = o->prof_bytes / 1e9;
  if (gb <= 0)
    return;
  fprintf(stderr, "trueno-ocl profile (%s): %.3f GB compressed, wall %.1f ms "
                  "(%.2f GB/s, stages run one at a time)\n",
          o->name, gb, o->prof_wall * 1e3, gb / o->prof_wall);
  for (int i = 0; i < P_N; i++)
    fprintf(stderr, "  %-16s %9.2f ms  %8.2f GB/s of pages\n", names[i],
            o->prof[i] * 1e3, o->prof[i] > 0 ? gb / o->prof[i] : 0.0);
}

void trueno_ocl_close(struct trueno_ocl *o) {
  if (!o)
    return;
  if (o->profile)
    print_profile(o);
  for (int i = 0; i < MAX_PINNED; i++)
    if (o->pinned[i].ptr)
      trueno_ocl_host_free(o, o->pinned[i].ptr);
  for (unsigned i = 0; i < MAX_QUEUES; i++) {
    release_qset(&o->qs[i]);
    if (o->qs[i].q)
      clReleaseCommandQueue(o->qs[i].q);
  }
  release_mem(&o->d_status);
  free(o->h_status);
  drop_program(o);
  if (o->ctx)
    clReleaseContext(o->ctx);
  pthread_mutex_destroy(&o->lock);
  free(o);
}

const char *trueno_ocl_device_name(const struct trueno_ocl *o) {
  return o->name;
}

const char *trueno_ocl_kernel_name(const struct trueno_ocl *o) {
  return o->kernel_name;
}

int trueno_ocl_kernel_cache(const struct trueno_ocl *o, const char **note) {
  if (note)
    *note = o->cache_note;
  return o->cached;
}

static cl_mem new_buffer(struct trueno_ocl *o, cl_mem_flags f, size_t bytes,
                         cl_int *e) {
  if (*e != CL_SUCCESS)
    return NULL;
  return clCreateBuffer(o->ctx, f, bytes ? bytes : 16, NULL, e);
}

/* A queue's buffers for pages pages and packed bytes of blocks. */
static int reserve(struct trueno_ocl *o, struct qset *s, size_t pages,
                   size_t packed) {
  if (pages <= s->cap_pages && packed <= s->cap_packed)
    return 0;
  if (pages < s->cap_pages)
    pages = s->cap_pages;
  if (packed < s->cap_packed)
    packed = s->cap_packed;
  release_qset(s);
  cl_int e = CL_SUCCESS;
  s->d_pages = new_buffer(o, CL_MEM_READ_WRITE, pages * PAGE + 64, &e);
  s->d_slots = new_buffer(o, CL_MEM_READ_WRITE, pages * SLOT, &e);
  s->d_lens = new_buffer(o, CL_MEM_READ_WRITE, pages * 4, &e);
  s->d_offs = new_buffer(o, CL_MEM_READ_WRITE, (pages + 1) * 4, &e);
  s->d_packed = new_buffer(o, CL_MEM_READ_WRITE, packed, &e);
  s->h_offs = malloc((pages + 1) * 4);
  if (e != CL_SUCCESS || !s->h_offs) {
    release_qset(s);
    return e != CL_SUCCESS ? cl_errno(e) : -ENOMEM;
  }
  s->cap_pages = pages;
  s->cap_packed = packed;
  return 0;
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

static double event_seconds(cl_event ev) {
  cl_ulong a = 0, b = 0;
  clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
  clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
  return b > a ? (double)(b - a) * 1e-9 : 0;
}

/* With profiling on, the event of stage i (else none). */
#define EV(i) (o->profile ? &evs[i] : NULL)

/* Enqueues a chunk of n pages on s: everything up to the read of its
 * lengths (into len) and offsets (event s->ev_offs). */
static int enqueue_chunk(struct trueno_ocl *o, struct qset *s,
                         const uint8_t *pages, cl_uint n, cl_uint cap,
                         uint32_t *len, cl_event *evs) {
  int r = reserve(o, s, n, (size_t)n * cap);
  if (r)
    return r;
  cl_int e = clEnqueueWriteBuffer(s->q, s->d_pages, CL_FALSE, 0,
                                  (size_t)n * PAGE, pages, 0, NULL, EV(P_WRITE));
  /* The coop kernel: a group a page, its local memory its own. */
  cl_kernel k = o->coop ? o->k_coop : o->k_comp;
  e |= clSetKernelArg(k, 0, sizeof(cl_mem), &s->d_pages);
  e |= clSetKernelArg(k, 1, sizeof(cl_mem), &s->d_slots);
  e |= clSetKernelArg(k, 2, sizeof(cl_mem), &s->d_lens);
  e |= clSetKernelArg(k, 3, sizeof n, &n);
  e |= clSetKernelArg(k, 4, sizeof cap, &cap);
  size_t l = o->coop ? o->coop_l : o->wg;
  size_t g = o->coop ? (size_t)n * l : round_up(n, l);
  if (!o->coop)
    e |= clSetKernelArg(k, 5, o->wg * ((size_t)2 << o->hash_log), NULL);
  if (e == CL_SUCCESS)
    e = clEnqueueNDRangeKernel(s->q, k, 1, NULL, &g, &l, 0, NULL,
                               EV(P_COMP));
  k = o->k_scan;
  if (e == CL_SUCCESS) {
    e |= clSetKernelArg(k, 0, sizeof(cl_mem), &s->d_lens);
    e |= clSetKernelArg(k, 1, sizeof(cl_mem), &s->d_offs);
    e |= clSetKernelArg(k, 2, sizeof n, &n);
    e |= clSetKernelArg(k, 3, o->scan_wg * sizeof(cl_uint), NULL);
  }
  if (e == CL_SUCCESS)
    e = clEnqueueNDRangeKernel(s->q, k, 1, NULL, &o->scan_wg, &o->scan_wg, 0,
                               NULL, EV(P_SCAN));
  k = o->k_pack;
  if (e == CL_SUCCESS) {
    e |= clSetKernelArg(k, 0, sizeof(cl_mem), &s->d_slots);
    e |= clSetKernelArg(k, 1, sizeof(cl_mem), &s->d_lens);
    e |= clSetKernelArg(k, 2, sizeof(cl_mem), &s->d_offs);
    e |= clSetKernelArg(k, 3, sizeof(cl_mem), &s->d_packed);
  }
  size_t pl = 64, pg = (size_t)n * pl;
  if (e == CL_SUCCESS)
    e = clEnqueueNDRangeKernel(s->q, k, 1, NULL, &pg, &pl, 0, NULL,
                               EV(P_PACK));
  /* Lengths and offsets in one read would need one buffer; two reads. */
  if (e == CL_SUCCESS)
    e = clEnqueueReadBuffer(s->q, s->d_lens, CL_FALSE, 0, (size_t)n * 4, len,
                            0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = clEnqueueReadBuffer(s->q, s->d_offs, CL_FALSE, 0, ((size_t)n + 1) * 4,
                            s->h_offs, 0, NULL, &s->ev_offs);
  if (e == CL_SUCCESS && o->profile)
    evs[P_READ_OFFS] = s->ev_offs, clRetainEvent(s->ev_offs);
  return cl_errno(e);
}

/* Waits for a chunk's offsets, checks them, fills off (base added) and
 * enqueues the read of its blocks into dst.  *total: their bytes. */
static int finish_chunk(struct trueno_ocl *o, struct qset *s, cl_uint cap,
                        uint8_t *dst, uint32_t base, uint32_t *off,
                        const uint32_t *len, uint32_t *total,
                        cl_event *evs) {
  cl_int e = clWaitForEvents(1, &s->ev_offs);
  clReleaseEvent(s->ev_offs);
  s->ev_offs = NULL;
  if (e != CL_SUCCESS)
    return cl_errno(e);
  cl_uint n = s->n;
  *total = s->h_offs[n];
  if (*total > (size_t)n * cap)
    return -EIO;
  for (cl_uint i = 0; i < n; i++) {
    if (len[i] > cap || s->h_offs[i] + len[i] > *total)
      return -EIO;
    off[i] = base + s->h_offs[i];
  }
  if (*total)
    e = clEnqueueReadBuffer(s->q, s->d_packed, CL_FALSE, 0, *total, dst, 0,
                            NULL, EV(P_READ_PACKED));
  return cl_errno(e);
}

static void profile_chunk(struct trueno_ocl *o, cl_event *evs) {
  for (int i = 0; i < P_N; i++) {
    if (evs[i]) {
      o->prof[i] += event_seconds(evs[i]);
      clReleaseEvent(evs[i]);
      evs[i] = NULL;
    }
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Chunks of sub_pages, queue k % nq for chunk k; a queue's previous chunk
 * is finished (its blocks' read enqueued) before it takes the next, and
 * chunks finish in order, each knowing where the last one's blocks end. */
static int compress_batch(struct trueno_ocl *o, const uint8_t *pages,
                          size_t n, cl_uint cap, uint8_t *dst, uint32_t *off,
                          uint32_t *len) {
  size_t per = o->sub_pages, nchunks = (n + per - 1) / per, done = 0;
  uint32_t base = 0;
  int r = 0;
  cl_event evs[P_N] = {0};
  for (size_t k = 0; k < nchunks + o->nq && !r; k++) {
    struct qset *s = &o->qs[k % o->nq];
    if (k >= o->nq && done < nchunks) { /* finish chunk k - nq */
      uint32_t total = 0;
      r = finish_chunk(o, s, cap, dst + base, base, off + s->first,
                       len + s->first, &total, evs);
      base += total;
      done++;
      if (r)
        break;
      if (o->profile) {
        clFinish(s->q);
        profile_chunk(o, evs);
      }
    }
    if (k < nchunks) {
      size_t first = k * per;
      cl_uint m = (cl_uint)(n - first < per ? n - first : per);
      s->n = m;
      s->first = first;
      r = enqueue_chunk(o, s, pages + first * PAGE, m, cap, len + first, evs);
      if (!r && o->profile) /* one at a time: stage times, no overlap */
        r = cl_errno(clWaitForEvents(1, &s->ev_offs));
    }
  }
  for (unsigned i = 0; i < o->nq; i++) {
    if (o->qs[i].ev_offs) {
      clReleaseEvent(o->qs[i].ev_offs);
      o->qs[i].ev_offs = NULL;
    }
    cl_int e = clFinish(o->qs[i].q);
    if (!r)
      r = cl_errno(e);
  }
  profile_chunk(o, evs);
  return r;
}

int trueno_ocl_compress(struct trueno_ocl *o, const void *pages, size_t n,
                        unsigned cap, void *dst, uint32_t *off,
                        uint32_t *len) {
  if (cap < 16 || cap > PAGE || (uint64_t)n * cap > UINT32_MAX)
    return -EINVAL;
  pthread_mutex_lock(&o->lock);
  double t0 = o->profile ? now() : 0;
  int r = compress_batch(o, pages, n, cap, dst, off, len);
  if (o->profile && !r) {
    o->prof_wall += now() - t0;
    o->prof_bytes += (double)n * PAGE;
  }
  pthread_mutex_unlock(&o->lock);
  return r;
}

static int decompress_chunk(struct trueno_ocl *o, const uint8_t *src,
                            const uint32_t *off, const uint32_t *len,
                            cl_uint n, uint8_t *pages) {
  /* The chunk's blocks, from the lowest offset to the highest end. */
  uint64_t lo = UINT64_MAX, hi = 0;
  for (cl_uint i = 0; i < n; i++) {
    if (!len[i])
      continue;
    if (len[i] > PAGE)
      return -EBADMSG;
    if (off[i] < lo)
      lo = off[i];
    if ((uint64_t)off[i] + len[i] > hi)
      hi = (uint64_t)off[i] + len[i];
  }
  if (lo > hi)
    lo = hi = 0;
  struct qset *s = &o->qs[0];
  int r = reserve(o, s, n, hi - lo);
  if (!r && n > o->cap_status) {
    release_mem(&o->d_status);
    free(o->h_status);
    o->cap_status = 0;
    cl_int e = CL_SUCCESS;
    o->d_status = new_buffer(o, CL_MEM_READ_WRITE, (size_t)n * 4, &e);
    o->h_status = malloc((size_t)n * 4);
    r = e != CL_SUCCESS ? cl_errno(e) : o->h_status ? 0 : -ENOMEM;
    if (!r)
      o->cap_status = n;
  }
  if (r)
    return r;
  for (cl_uint i = 0; i < n; i++)
    s->h_offs[i] = len[i] ? (uint32_t)(off[i] - lo) : 0;
  cl_int e = CL_SUCCESS;
  if (hi > lo)
    e = clEnqueueWriteBuffer(o->q, s->d_packed, CL_FALSE, 0, hi - lo,
                             src + lo, 0, NULL, NULL);
  e |= clEnqueueWriteBuffer(o->q, s->d_offs, CL_FALSE, 0, (size_t)n * 4,
                            s->h_offs, 0, NULL, NULL);
  e |= clEnqueueWriteBuffer(o->q, s->d_lens, CL_FALSE, 0, (size_t)n * 4, len,
                            0, NULL, NULL);
  cl_kernel k = o->k_dec;
  e |= clSetKernelArg(k, 0, sizeof(cl_mem), &s->d_packed);
  e |= clSetKernelArg(k, 1, sizeof(cl_mem), &s->d_offs);
  e |= clSetKernelArg(k, 2, sizeof(cl_mem), &s->d_lens);
  e |= clSetKernelArg(k, 3, sizeof n, &n);
  e |= clSetKernelArg(k, 4, sizeof(cl_mem), &s->d_pages);
  e |= clSetKernelArg(k, 5, sizeof(cl_mem), &o->d_status);
  size_t l = o->wg, g = round_up(n, l);
  if (e == CL_SUCCESS)
    e = clEnqueueNDRangeKernel(o->q, k, 1, NULL, &g, &l, 0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = clEnqueueReadBuffer(o->q, o->d_status, CL_FALSE, 0, (size_t)n * 4,
                            o->h_status, 0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = clEnqueueReadBuffer(o->q, s->d_pages, CL_TRUE, 0, (size_t)n * PAGE,
                            pages, 0, NULL, NULL);
  if (e != CL_SUCCESS) {
    clFinish(o->q);
    return cl_errno(e);
  }
  for (cl_uint i = 0; i < n; i++)
    if (o->h_status[i])
      return -EBADMSG;
  return 0;
}

int trueno_ocl_decompress(struct trueno_ocl *o, const void *src,
                          const uint32_t *off, const uint32_t *len, size_t n,
                          void *pages) {
  pthread_mutex_lock(&o->lock);
  int r = 0;
  for (size_t i = 0; !r && i < n; i += o->chunk_pages) {
    cl_uint c = (cl_uint)(n - i < o->chunk_pages ? n - i : o->chunk_pages);
    r = decompress_chunk(o, src, off + i, len + i, c,
                         (uint8_t *)pages + i * PAGE);
  }
  pthread_mutex_unlock(&o->lock);
  return r;
}

void *trueno_ocl_host_alloc(struct trueno_ocl *o, size_t bytes) {
  pthread_mutex_lock(&o->lock);
  void *p = NULL;
  for (int i = 0; i < MAX_PINNED && !p; i++) {
    if (o->pinned[i].ptr)
      continue;
    cl_int e;
    cl_mem m = clCreateBuffer(o->ctx, CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE,
                              bytes, NULL, &e);
    if (e != CL_SUCCESS)
      break;
    p = clEnqueueMapBuffer(o->q, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                           bytes, 0, NULL, NULL, &e);
    if (e != CL_SUCCESS) {
      clReleaseMemObject(m);
      p = NULL;
      break;
    }
    o->pinned[i].ptr = p;
    o->pinned[i].mem = m;
  }
  pthread_mutex_unlock(&o->lock);
  return p;
}

void trueno_ocl_host_free(struct trueno_ocl *o, void *p) {
  if (!p)
    return;
  pthread_mutex_lock(&o->lock);
  for (int i = 0; i < MAX_PINNED; i++) {
    if (o->pinned[i].ptr != p)
      continue;
    clEnqueueUnmapMemObject(o->q, o->pinned[i].mem, p, 0, NULL, NULL);
    clFinish(o->q);
    clReleaseMemObject(o->pinned[i].mem);
    o->pinned[i].ptr = NULL;
  }
  pthread_mutex_unlock(&o->lock);
}
