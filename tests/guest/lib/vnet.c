/* vnet.c — see vnet.h. */
#include "vnet.h"

#include "guest.h"

bool vnet_send(struct vq *tx, uint8_t *buf, const uint8_t dst[6], const uint8_t src[6],
	       const char *payload)
{
	memset(buf, 0, VNET_HDR);
	uint8_t *f = buf + VNET_HDR;
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	size_t n = strlen(payload);
	memcpy(f + 14, payload, n);
	struct vbuf b = {buf, (uint32_t)(VNET_HDR + 14 + n), false};
	vq_add(tx, &b, 1);
	vq_kick(tx);
	return vq_wait(tx, NULL, NULL, 20000);
}
