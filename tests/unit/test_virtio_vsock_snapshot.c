/* test_virtio_vsock_snapshot.c — virtio-vsock's snapshot save and load with the fake
 * guest driver (vsock_test_util.h): the CID, transport, stream ports and next host
 * port come back; the guest's streams get an RST each ahead of a new connect; a
 * stream marked to carry is re-created and adopted with its counters (or reset when
 * busy at the save or not adopted); an older snapshot without the list gets the
 * transport reset; malformed state is refused. */
#include "tests/unit/vsock_test_util.h"

#include <string.h>

/* Snapshot: the CID, the transport, the open streams' ports and the next host port
 * are saved. After a load the host ends are closed and the guest, which still holds
 * the streams, gets an RST for each (and for a pair a queued RST named), ahead of
 * the REQUEST of a connect made at once; new streams take fresh host ports. */
static void save_and_load(void **state)
{
	struct fguest *g = *state;
	struct device *d = &virtio_vsock_vdev(g->s)->dev;
	fg_post_rx(g, 1, FG_RXBUF); /* one buffer, re-posted after each REQUEST */
	uint32_t hp, hp2, hp3;
	int fd = open_stream(g, 97, 65536, &hp);
	int fd2 = open_stream(g, 96, 65536, &hp2);
	assert_int_equal(write(fd, "a", 1), 1); /* takes the buffer: the RST below waits */
	for (int i = 0; i < 50; i++)
		fg_pump(g);
	assert_int_equal(virtio_vsock_reset(g->s, hp2, 96), 0);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(d, &sb, &up), 0);
	virtio_vsock_set_cid(g->s, 55);
	assert_int_equal(d->ops->load(d, &up.data), 0);
	assert_int_equal(virtio_vsock_cid(g->s), FG_CID);
	char c;
	assert_int_equal(read_some(fd, &c, 1, g), 0);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, 0);
	close(fd);
	close(fd2);
	fg_post_rx(g, 8, FG_RXBUF);
	assert_true(virtio_vsock_restored(g->s));
	/* no wait for the guest: the connect's REQUEST goes out behind the RSTs */
	int fd3 = virtio_vsock_connect(g->s, 98, &hp3);
	assert_true(fd3 >= 0);
	assert_true(hp3 > hp && hp3 > hp2);
	struct virtio_vsock_hdr h = expect_pkt(g, NULL, 0); /* delivered before the save */
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.src_port, hp);
	assert_int_equal(h.dst_port, 97);
	assert_int_equal(h.dst_cid, FG_CID);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.src_port, hp2);
	assert_int_equal(h.dst_port, 96);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(h.src_port, hp3);
	assert_int_equal(h.dst_port, 98);
	/* the restored rings still work: the stream opens and carries data */
	struct virtio_vsock_hdr r = fg_hdr(98, hp3, VIRTIO_VSOCK_OP_RESPONSE, 0, 65536, 0);
	fg_send(g, &r, NULL);
	assert_int_equal(write(fd3, "x", 1), 1);
	char buf[8];
	h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.len, 1);
	assert_true(no_pkt(g));
	close(fd3);
	msgpack_object bad = {.type = MSGPACK_OBJECT_MAP};
	assert_int_equal(d->ops->load(d, &bad), -EINVAL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* A stream marked to carry is saved whole when idle: after the load it exists again
 * (no RST for it) and virtio_vsock_adopt() hands out a new host end that carries
 * data both ways with the saved credit counters; a carried stream nobody adopts,
 * and one that was busy at the save, end with an RST like the others. */
static void carried_stream_is_adopted(void **state)
{
	struct fguest *g = *state;
	struct device *d = &virtio_vsock_vdev(g->s)->dev;
	fg_post_rx(g, 8, FG_RXBUF);
	uint32_t hp, hp2, hp3, got;
	int fd = open_stream(g, 1024, 65536, &hp);
	int fd2 = open_stream(g, 97, 65536, &hp2);
	int fd3 = open_stream(g, 2000, 65536, &hp3);
	assert_int_equal(write(fd, "hi", 2), 2);
	char buf[16];
	struct virtio_vsock_hdr h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	struct virtio_vsock_hdr w = fg_hdr(1024, hp, VIRTIO_VSOCK_OP_RW, 3, 65536, 2);
	fg_send(g, &w, "abc");
	assert_int_equal(read_some(fd, buf, sizeof(buf), g), 3);
	assert_int_equal(virtio_vsock_carry(g->s, hp, 1024), 0);
	assert_int_equal(virtio_vsock_carry(g->s, hp3, 2000), 0);
	assert_int_equal(virtio_vsock_carry(g->s, hp, 5), -ENOENT);
	/* busy: bytes of the host end the device has not read (no buffer for them) */
	struct virtio_vsock_hdr z = fg_hdr(2000, hp3, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0, 0);
	fg_send(g, &z, NULL); /* the guest has no room now: the device stops reading */
	assert_int_equal(write(fd3, "x", 1), 1);
	for (int i = 0; i < 20; i++)
		fg_pump(g);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(d, &sb, &up), 0);
	assert_int_equal(d->ops->load(d, &up.data), 0);
	char c;
	assert_int_equal(read_some(fd, &c, 1, g), 0); /* the old host ends are closed */
	close(fd);
	close(fd2);
	close(fd3);
	int afd = virtio_vsock_adopt(g->s, 1024, &got);
	assert_true(afd >= 0);
	assert_int_equal(got, hp);
	assert_int_equal(virtio_vsock_adopt(g->s, 1024, &got), -ENOENT);
	assert_int_equal(virtio_vsock_adopt(g->s, 2000, &got), -ENOENT); /* was busy */
	assert_true(virtio_vsock_restored(g->s));
	/* RSTs for the others, none for the adopted stream */
	bool rst97 = false, rst2000 = false;
	for (int i = 0; i < 2; i++) {
		h = expect_pkt(g, NULL, 0);
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
		assert_int_not_equal(h.src_port, hp);
		rst97 |= h.dst_port == 97;
		rst2000 |= h.dst_port == 2000;
	}
	assert_true(rst97 && rst2000);
	assert_true(no_pkt(g));
	/* the adopted stream goes on where it was: counters and data both ways */
	assert_int_equal(write(afd, "more", 4), 4);
	h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.src_port, hp);
	assert_int_equal(h.len, 4);
	assert_memory_equal(buf, "more", 4);
	assert_int_equal(h.fwd_cnt, 3); /* the 3 bytes the host got before the save */
	w = fg_hdr(1024, hp, VIRTIO_VSOCK_OP_RW, 2, 65536, 6);
	fg_send(g, &w, "ok");
	assert_int_equal(read_some(afd, buf, sizeof(buf), g), 2);
	assert_memory_equal(buf, "ok", 2);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.adopted, 1);
	assert_int_equal(st.streams, 1);
	close(afd);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* A carried stream nobody adopts gets its RST from virtio_vsock_restored(). */
static void unadopted_carried_stream_is_reset(void **state)
{
	struct fguest *g = *state;
	struct device *d = &virtio_vsock_vdev(g->s)->dev;
	fg_post_rx(g, 8, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 1024, 65536, &hp);
	assert_int_equal(virtio_vsock_carry(g->s, hp, 1024), 0);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(d, &sb, &up), 0);
	assert_int_equal(d->ops->load(d, &up.data), 0);
	close(fd);
	assert_true(no_pkt(g)); /* carried: no RST at the load */
	assert_true(virtio_vsock_restored(g->s));
	struct virtio_vsock_hdr h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.src_port, hp);
	assert_int_equal(virtio_vsock_adopt(g->s, 1024, NULL), -ENOENT);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, 0);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* A snapshot from before streams were saved (no "streams", "carried", "next_port"): the load
 * cannot name the guest's streams, so virtio_vsock_restored() sends the transport
 * reset and connects wait for the guest to take it. A malformed list is refused. */
static void load_without_streams_resets_the_transport(void **state)
{
	struct fguest *g = *state;
	struct device *d = &virtio_vsock_vdev(g->s)->dev;
	fg_post_rx(g, 8, FG_RXBUF);
	struct fake_buf b = {g->ev_gpa, 4, true};
	fake_submit(&g->f, 2, &b, 1, false);
	fake_kick(&g->f, 2);
	uint32_t hp;
	int fd = open_stream(g, 97, 65536, &hp);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(d, &sb, &up), 0);
	msgpack_object_map *m = &up.data.via.map;
	msgpack_object_kv kv[8];
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->size && n < 8; i++) {
		const msgpack_object_str *k = &m->ptr[i].key.via.str;
		if (!(k->size == 7 && !memcmp(k->ptr, "streams", 7)) &&
		    !(k->size == 7 && !memcmp(k->ptr, "carried", 7)) &&
		    !(k->size == 9 && !memcmp(k->ptr, "next_port", 9)))
			kv[n++] = m->ptr[i];
	}
	assert_int_equal(n, m->size - 3);
	msgpack_object old = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = n, .ptr = kv}};
	/* malformed: next_port missing beside a list */
	kv[n] = m->ptr[0];
	for (uint32_t i = 0; i < m->size; i++)
		if (m->ptr[i].key.via.str.size == 7 && !memcmp(m->ptr[i].key.via.str.ptr, "streams", 7))
			kv[n] = m->ptr[i];
	msgpack_object partial = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = n + 1, .ptr = kv}};
	assert_int_equal(d->ops->load(d, &partial), -EINVAL);
	assert_int_equal(d->ops->load(d, &old), 0);
	char c;
	assert_int_equal(read_some(fd, &c, 1, g), 0);
	close(fd);
	assert_false(virtio_vsock_restored(g->s));
	uint32_t id, len;
	assert_int_equal(fake_get_used(&g->f, 2, &id, &len), 1); /* the event went out */
	uint32_t ev;
	memcpy(&ev, fake_ptr(&g->f, g->ev_gpa), 4);
	assert_int_equal(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(virtio_vsock_connect(g->s, 1024, NULL), -EAGAIN);
	assert_true(no_pkt(g)); /* and no RST: the load had no streams to name */
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(save_and_load, setup, teardown),
		cmocka_unit_test_setup_teardown(load_without_streams_resets_the_transport, setup, teardown),
		cmocka_unit_test_setup_teardown(carried_stream_is_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(unadopted_carried_stream_is_reset, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
