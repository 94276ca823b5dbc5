/* util.h — error reporting and small helpers shared by every part of provium.
 *
 * Convention (STYLE.md): a function that can fail returns 0 (or a non-negative
 * value) on success and -errno on failure, after calling pv_error() to record a
 * message a person can read ("vm web: kernel /x/vmlinux: no such file"). The caller
 * that reports the failure reads it with pv_errmsg(). Library code never exits. */
#ifndef PROVIUM_UTIL_H
#define PROVIUM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* Records a message for the current thread and returns -err (err is a positive
 * errno value, or 0 to mean EIO), so callers can write `return pv_error(ENOENT, ...)`. */
int pv_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current thread's message with "prefix: ". Returns -err like pv_error. */
int pv_error_prefix(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message recorded on this thread ("" when none). */
const char *pv_errmsg(void);
void pv_error_clear(void);

/* Logging to stderr, prefixed with "provium: ". pv_debug prints only when
 * PROVIUM_DEBUG is set in the environment. */
void pv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pv_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic and wall clocks in nanoseconds. */
uint64_t pv_now_ns(void);
uint64_t pv_wall_ns(void);

/* Read a whole file into a malloc'd buffer (NUL-terminated, *len excludes the NUL). */
int pv_read_file(const char *path, char **data, size_t *len);
/* Map a whole file read-only (its page-cache pages, nothing copied): the kernel and
 * initrd loaders copy from it straight into guest RAM, where a malloc'd copy cost a
 * boot in the simulated host 340 ms of fresh anonymous pages (docs/vmm.md). An empty
 * file gives *data NULL, *len 0. pv_unmap_file(NULL, 0) does nothing. */
int pv_map_file(const char *path, const unsigned char **data, size_t *len);
void pv_unmap_file(const unsigned char *data, size_t len);
/* write(2)/read(2) until all bytes are done, retrying on EINTR. Return 0 or -errno;
 * pv_read_full returns -EPIPE on EOF before len bytes. */
int pv_write_full(int fd, const void *buf, size_t len);
int pv_read_full(int fd, void *buf, size_t len);

#define PV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PV_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define PV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PV_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
