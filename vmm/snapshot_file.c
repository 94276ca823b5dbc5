/* snapshot_file.c — the files of a snapshot directory: the checked state file
 * (magic | version | state | CRC), sparse guest-memory dumps and sparse/reflink
 * copies of disk images (vmm/snapshot.h, docs/snapshots.md). */
#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 as zlib's crc32() computes it (start with 0). */
uint32_t snapshot_crc32(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, crc_init);
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int snapshot_state_write(const char *path, const void *state, size_t len)
{
	char tmp[4096];
	uint8_t hdr[SNAPSHOT_HEADER_SIZE], tail[4];
	memcpy(hdr, SNAPSHOT_MAGIC, 8);
	put_le(hdr + 8, SNAPSHOT_VERSION, 4);
	put_le(hdr + 12, 0, 4);
	put_le(hdr + 16, len, 8);
	uint32_t crc = snapshot_crc32(0, hdr, sizeof(hdr));
	crc = snapshot_crc32(crc, state, len);
	put_le(tail, crc, 4);

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return pv_error(errno, "%s: %s", tmp, strerror(errno));
	int err = pv_write_full(fd, hdr, sizeof(hdr));
	if (!err)
		err = pv_write_full(fd, state, len);
	if (!err)
		err = pv_write_full(fd, tail, sizeof(tail));
	if (!err && fsync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		return pv_error(-err, "%s: %s", path, strerror(-err));
	}
	return 0;
}

int snapshot_state_read(const char *path, void **state, size_t *len)
{
	char *data;
	size_t n;
	int err = pv_read_file(path, &data, &n);
	if (err < 0)
		return err;
	const uint8_t *p = (const uint8_t *)data;
	if (n < SNAPSHOT_HEADER_SIZE + 4) {
		err = pv_error(EINVAL, "snapshot state %s: truncated: %zu bytes, shorter than "
			       "the %u-byte header and CRC", path, n, SNAPSHOT_HEADER_SIZE + 4);
		goto fail;
	}
	if (memcmp(p, SNAPSHOT_MAGIC, 8) != 0) {
		err = pv_error(EINVAL, "snapshot state %s: not a provium snapshot state file "
			       "(bad magic)", path);
		goto fail;
	}
	uint32_t version = (uint32_t)get_le(p + 8, 4);
	if (version != SNAPSHOT_VERSION) {
		err = pv_error(EINVAL, "snapshot state %s: format version %u, this provium reads "
			       "version %u only (made by another provium version: take the "
			       "snapshot again)", path, version, SNAPSHOT_VERSION);
		goto fail;
	}
	uint64_t slen = get_le(p + 16, 8);
	if (slen != n - SNAPSHOT_HEADER_SIZE - 4) {
		err = pv_error(EINVAL, "snapshot state %s: truncated or padded: the header says "
			       "%" PRIu64 " bytes of state, the file holds %zu", path, slen,
			       n - SNAPSHOT_HEADER_SIZE - 4);
		goto fail;
	}
	uint32_t want = (uint32_t)get_le(p + n - 4, 4);
	uint32_t got = snapshot_crc32(0, p, n - 4);
	if (want != got) {
		err = pv_error(EINVAL, "snapshot state %s: CRC mismatch (stored 0x%08x, computed "
			       "0x%08x): the file is corrupt", path, want, got);
		goto fail;
	}
	memmove(data, data + SNAPSHOT_HEADER_SIZE, slen);
	*state = data;
	*len = slen;
	return 0;
fail:
	free(data);
	return err;
}

#define PAGE 4096ull

/* Marks the pages of [off, off+len) in the bitmap. */
static void mark(uint8_t *bm, uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end = PV_MIN(off + len, size);
	for (uint64_t pg = off / PAGE; pg * PAGE < end; pg++)
		bm[pg / 8] |= 1u << (pg % 8);
}

/* The next data range of fd at or after *pos, within size (SEEK_DATA/SEEK_HOLE):
 * 1 with [*d, *h), 0 when only a hole is left, -1 when the file system cannot
 * say (errno). */
static int next_data(int fd, off_t pos, uint64_t size, off_t *d, off_t *h)
{
	if ((uint64_t)pos >= size)
		return 0;
	*d = lseek(fd, pos, SEEK_DATA);
	if (*d < 0)
		return errno == ENXIO ? 0 : -1;
	*h = lseek(fd, *d, SEEK_HOLE);
	if (*h < 0 || (uint64_t)*h > size)
		*h = (off_t)size;
	return 1;
}

/* Data ranges of fd; everything from where it cannot say. */
static void mark_data(int fd, uint8_t *bm, uint64_t size)
{
	off_t pos = 0, d, h;
	int r;
	while ((r = next_data(fd, pos, size, &d, &h)) > 0) {
		mark(bm, d, h - d, size);
		pos = h;
	}
	if (r < 0)
		mark(bm, pos, size - pos, size);
}

int64_t snapshot_pagemap_scan(const void *mem, uint64_t size, bool (*keep)(uint64_t entry),
			      uint8_t *bm)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t buf[4096], npages = size / PAGE, base = (uintptr_t)mem / PAGE;
	int64_t count = 0;
	for (uint64_t pg = 0; pg < npages;) {
		uint64_t n = PV_MIN(npages - pg, (uint64_t)PV_ARRAY_SIZE(buf));
		ssize_t r = pread(fd, buf, n * 8, (off_t)((base + pg) * 8));
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		n = (uint64_t)r / 8;
		for (uint64_t i = 0; i < n; i++)
			if (keep(buf[i])) {
				bm[(pg + i) / 8] |= 1u << ((pg + i) % 8);
				count++;
			}
		pg += n;
	}
	close(fd);
	return count;
}

/* A page of a private mapping the guest wrote (an anonymous copy) or that was
 * swapped out: pagemap bit 63 present, 62 swapped, 61 file page. */
static bool private_page(uint64_t e)
{
	return ((e >> 63) & 1 && !((e >> 61) & 1)) || (e >> 62) & 1;
}

int snapshot_private_pages(const void *mem, uint64_t size, uint8_t *bm)
{
	int64_t n = snapshot_pagemap_scan(mem, size, private_page, bm);
	if (n < 0)
		return pv_error((int)-n, "/proc/self/pagemap: %s", strerror((int)-n));
	return 0;
}

int snapshot_memory_write(const char *path, const void *mem, uint64_t size, int backing_fd)
{
	uint64_t npages = (size + PAGE - 1) / PAGE;
	uint8_t *bm = calloc(1, npages / 8 + 1);
	if (!bm)
		return pv_error(ENOMEM, "out of memory");
	int err = 0;
	if (backing_fd >= 0)
		mark_data(backing_fd, bm, size);
	if ((err = snapshot_private_pages(mem, size, bm)) < 0) {
		free(bm);
		return err;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		free(bm);
		return pv_error(-err, "%s: %s", path, strerror(-err));
	}
	if (ftruncate(fd, (off_t)size) < 0)
		err = -errno;
	for (uint64_t pg = 0; pg < npages && !err;) {
		if (!(bm[pg / 8] & (1u << (pg % 8)))) {
			pg++;
			continue;
		}
		uint64_t end = pg;
		while (end < npages && (bm[end / 8] & (1u << (end % 8))))
			end++;
		uint64_t off = pg * PAGE, len = PV_MIN(end * PAGE, size) - off;
		const uint8_t *src = (const uint8_t *)mem + off;
		while (len && !err) {
			ssize_t w = pwrite(fd, src, PV_MIN(len, 1ull << 30), (off_t)off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				err = w < 0 ? -errno : -EIO;
			else {
				src += w;
				off += (uint64_t)w;
				len -= (uint64_t)w;
			}
		}
		pg = end;
	}
	if (!err && fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	free(bm);
	if (err)
		return pv_error(-err, "guest memory %s: %s", path, strerror(-err));
	return 0;
}

int snapshot_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return pv_error(errno, "copy %s: %s", src, strerror(errno));
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;
		close(in);
		return pv_error(e, "copy to %s: %s", dst, strerror(e));
	}
	int err = 0;
	struct stat st;
	if (fstat(in, &st) < 0) {
		err = -errno;
		goto done;
	}
	if (ioctl(out, FICLONE, in) == 0)
		goto done;
	if (ftruncate(out, st.st_size) < 0) {
		err = -errno;
		goto done;
	}
	for (off_t pos = 0; pos < st.st_size && !err;) {
		off_t d = lseek(in, pos, SEEK_DATA);
		if (d < 0)
			break; /* ENXIO: only a hole is left */
		off_t h = lseek(in, d, SEEK_HOLE);
		if (h < 0)
			h = st.st_size;
		off_t ri = d, wo = d;
		while (ri < h) {
			ssize_t n = copy_file_range(in, &ri, out, &wo, (size_t)(h - ri), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* No copy_file_range across these files: plain reads. */
				char buf[1 << 16];
				ssize_t r = pread(in, buf, PV_MIN((off_t)sizeof(buf), h - ri), ri);
				if (r <= 0 || pwrite(out, buf, (size_t)r, wo) != r) {
					err = r < 0 ? -errno : -EIO;
					break;
				}
				ri += r;
				wo += r;
			}
		}
		pos = h;
	}
done:
	close(in);
	close(out);
	if (err) {
		unlink(dst);
		return pv_error(-err, "copy %s to %s: %s", src, dst, strerror(-err));
	}
	return 0;
}

uint64_t snapshot_du(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	uint64_t n = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return n;
	DIR *d = opendir(path);
	if (!d)
		return n;
	struct dirent *e;
	char sub[PATH_MAX];
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
			n += snapshot_du(sub);
	closedir(d);
	return n;
}

int snapshot_rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (!d)
			return -errno;
		struct dirent *e;
		char sub[PATH_MAX];
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			    snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
				snapshot_rm_tree(sub);
		closedir(d);
		return rmdir(path) < 0 ? -errno : 0;
	}
	return unlink(path) < 0 ? -errno : 0;
}
