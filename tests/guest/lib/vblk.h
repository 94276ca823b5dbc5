/* vblk.h — virtio-blk requests for the test guests (virtio 1.x §5.2.6): one
 * chain of header, data and status byte at a time, as Linux's virtio_blk sends
 * them, and the 512-byte sector patterns the host sides check. */
#ifndef GUEST_VBLK_H
#define GUEST_VBLK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_F_FLUSH (1ull << 9)

/* The status byte of the last request (0xee until the device writes it). */
extern volatile uint8_t vblk_status;

/* Adds the request (len bytes of data, none when 0; the device writes them for
 * IN and GET_ID) to q without kicking. Returns the chain's head. */
uint16_t vblk_submit(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len);
/* Submits, kicks, waits up to 20 s: the status byte, or -1 when the
 * request did not complete. */
int vblk_rw(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len);

/* Byte i of the sector pattern for seed (what the host sides write and check). */
static inline uint8_t vblk_pat(unsigned i, unsigned seed) { return (uint8_t)(i * seed + 1); }
bool vblk_is_pattern(const uint8_t *sector, unsigned seed);
void vblk_fill(uint8_t *sector, unsigned seed);

#endif
