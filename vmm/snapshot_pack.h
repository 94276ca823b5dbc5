/* snapshot_pack.h — the msgpack helpers vm.state's writers and readers share
 * (vmm/snapshot.c and the architectures' vCPU/chip state, vmm/x86/, vmm/arm64/). */
#ifndef PROVIUM_SNAPSHOT_PACK_H
#define PROVIUM_SNAPSHOT_PACK_H

#include "devices/virtio.h"
#include "vmm/util.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

static inline void pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	msgpack_pack_str_with_body(pk, s ? s : "", n);
}

static inline void pk_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n)
{
	pk_str(pk, k);
	msgpack_pack_bin_with_body(pk, p, n);
}

static inline void pk_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	pk_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static inline void pk_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	pk_str(pk, k);
	pk_str(pk, v);
}

/* key's value in a msgpack map (NULL when absent or not a map): the lookup the
 * virtio devices' own state uses. */
static inline const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	return virtio_msgpack_get(map, key);
}

/* Each getter names the missing/bad field with `what` ("vcpu 0", "vm"). */
static inline int mp_u64(const msgpack_object *map, const char *what, const char *key, uint64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return pv_error(EINVAL, "%s: \"%s\" is missing or not a number", what, key);
	*v = o->via.u64;
	return 0;
}

static inline int mp_bin(const msgpack_object *map, const char *what, const char *key, void *out,
		  size_t len)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_BIN)
		return pv_error(EINVAL, "%s: \"%s\" is missing", what, key);
	if (o->via.bin.size != len)
		return pv_error(EINVAL, "%s: \"%s\" is %u bytes, this build's KVM struct is %zu "
				"(saved by another build)", what, key, o->via.bin.size, len);
	memcpy(out, o->via.bin.ptr, len);
	return 0;
}

#endif
