/* vblk.c — the test guests' virtio-blk requests and sector patterns
 * (vblk.h). */
#include "guest.h"
#include "vblk.h"

struct vblk_hdr { uint32_t type, reserved; uint64_t sector; };

static struct vblk_hdr hdr;
volatile uint8_t vblk_status;

uint16_t vblk_submit(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	hdr.type = type;
	hdr.sector = sector;
	vblk_status = 0xee;
	struct vbuf b[3] = {{&hdr, sizeof(hdr), false}};
	unsigned n = 1;
	if (len)
		b[n++] = (struct vbuf){data, len, type == VBLK_T_IN || type == VBLK_T_GET_ID};
	b[n++] = (struct vbuf){(void *)&vblk_status, 1, true};
	return vq_add(q, b, n);
}

int vblk_rw(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	vblk_submit(q, type, sector, data, len);
	vq_kick(q);
	if (!vq_wait(q, NULL, NULL, 20000))
		return -1;
	return vblk_status;
}

bool vblk_is_pattern(const uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		if (p[i] != vblk_pat(i, seed))
			return false;
	return true;
}

void vblk_fill(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		p[i] = vblk_pat(i, seed);
}
