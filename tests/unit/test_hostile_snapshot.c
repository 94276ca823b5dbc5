/* test_hostile_snapshot.c — crafted vm.state files with a valid CRC (issue 11, the
 * two suspected snapshot-loader holes, docs/security.md):
 *  - a msgpack container that announces far more elements than the file holds is
 *    refused before msgpack-c reserves memory for them;
 *  - cpus = 0 with an empty vCPU array (and other config/vCPU shapes the restore
 *    would index blindly) is refused with a message, never read past; with
 *    /dev/kvm, vm_restore of such a state made from a real snapshot fails cleanly
 *    (it used to read element 0 of the empty array). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/snapshot.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/provium-test-hsnap-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return snapshot_rm_tree(dir) == 0 ? 0 : -1;
}

static void write_state(const void *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_STATE_FILE);
	assert_int_equal(snapshot_state_write(path, p, n), 0);
}

static void pk_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* {config={[arch,] name, memory_mib=16, cpus=cpus}, vcpus=<nvcpus maps>, vm={},
 * serial={}, devices=[]}; arch NULL: none, as before arm64. */
static void pack_arch(msgpack_sbuffer *sb, const char *arch, uint64_t cpus, uint32_t nvcpus,
		      uint64_t mib)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	pk_s(&pk, "config");
	msgpack_pack_map(&pk, 3 + (arch != NULL));
	if (arch) {
		pk_s(&pk, "arch");
		pk_s(&pk, arch);
	}
	pk_s(&pk, "name");
	pk_s(&pk, "crafted");
	pk_s(&pk, "memory_mib");
	msgpack_pack_uint64(&pk, mib);
	pk_s(&pk, "cpus");
	msgpack_pack_uint64(&pk, cpus);
	pk_s(&pk, "vcpus");
	msgpack_pack_array(&pk, nvcpus);
	for (uint32_t i = 0; i < nvcpus; i++)
		msgpack_pack_map(&pk, 0);
	pk_s(&pk, "vm");
	msgpack_pack_map(&pk, 0);
	pk_s(&pk, "serial");
	msgpack_pack_map(&pk, 0);
	pk_s(&pk, "devices");
	msgpack_pack_array(&pk, 0);
}

static void pack_minimal(msgpack_sbuffer *sb, uint64_t cpus, uint32_t nvcpus, uint64_t mib)
{
	pack_arch(sb, NULL, cpus, nvcpus, mib);
}

static void test_huge_container_count_refused(void **state)
{
	(void)state;
	/* {"config": [<2^31-1 elements announced>]}: 18 bytes of state */
	static const uint8_t st[] = {0x81, 0xa6, 'c', 'o', 'n', 'f', 'i', 'g',
				     0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0};
	write_state(st, sizeof(st));
	struct vm_snapshot_info info;
	assert_int_equal(vm_snapshot_info(dir, &info), -EINVAL);
	print_message("# %s\n", pv_errmsg());
	assert_non_null(strstr(pv_errmsg(), "announces"));
	assert_non_null(strstr(pv_errmsg(), SNAPSHOT_STATE_FILE));
	/* a map32 nested inside a valid map: same */
	static const uint8_t st2[] = {0x81, 0xa5, 'v', 'c', 'p', 'u', 's', 0x91,
				      0xdf, 0x10, 0x00, 0x00, 0x00};
	write_state(st2, sizeof(st2));
	assert_int_equal(vm_snapshot_info(dir, &info), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "announces"));
}

static void expect_refused(uint64_t cpus, uint32_t nvcpus, uint64_t mib, const char *word)
{
	msgpack_sbuffer sb;
	pack_minimal(&sb, cpus, nvcpus, mib);
	write_state(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	struct vm_snapshot_info info;
	assert_int_equal(vm_snapshot_info(dir, &info), -EINVAL);
	print_message("# cpus=%llu vcpus=%u mib=%llu: %s\n", (unsigned long long)cpus, nvcpus,
		      (unsigned long long)mib, pv_errmsg());
	assert_non_null(strstr(pv_errmsg(), word));
}

static void test_bad_cpu_counts_refused(void **state)
{
	(void)state;
	expect_refused(0, 0, 16, "cpus");
	expect_refused(2, 1, 16, "vCPU");
	expect_refused(1000, 1000, 16, "cpus");
	expect_refused(1, 1, 1ull << 40, "memory_mib");
	/* the well-formed one passes the shape checks */
	msgpack_sbuffer sb;
	pack_minimal(&sb, 1, 1, 16);
	write_state(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	struct vm_snapshot_info info;
	assert_int_equal(vm_snapshot_info(dir, &info), 0);
	assert_int_equal(info.cpus, 1);
}

/* A snapshot of the other architecture is listed with it, and its restore is
 * refused naming both, before any KVM call; one without "arch" is x86_64's. */
static void test_other_arch_refused(void **state)
{
	(void)state;
	const char *other = strcmp(vm_arch_name(), "arm64") ? "arm64" : "x86_64";
	msgpack_sbuffer sb;
	pack_arch(&sb, other, 1, 1, 16);
	write_state(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	struct vm_snapshot_info info;
	assert_int_equal(vm_snapshot_info(dir, &info), 0);
	assert_string_equal(info.arch, other);
	struct vm *vm = NULL;
	assert_int_equal(vm_restore(dir, NULL, &vm), -EINVAL);
	print_message("# %s\n", pv_errmsg());
	char want[96];
	snprintf(want, sizeof(want), "of an %s VM; this provium runs %s guests", other,
		 vm_arch_name());
	assert_non_null(strstr(pv_errmsg(), want));
	assert_null(vm);
	pack_minimal(&sb, 1, 1, 16);
	write_state(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(vm_snapshot_info(dir, &info), 0);
	assert_string_equal(info.arch, "x86_64");
}

/* ---- with KVM: vm_restore of an edited real snapshot ---- */

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Copies a msgpack object, with config.cpus = 0 and vcpus = [] at the top. */
static void pack_zero_cpus(msgpack_packer *pk, const msgpack_object *root)
{
	msgpack_pack_map(pk, root->via.map.size);
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		msgpack_pack_object(pk, kv->key);
		const char *k = kv->key.via.str.ptr;
		size_t kl = kv->key.via.str.size;
		if (kl == 5 && !memcmp(k, "vcpus", 5)) {
			msgpack_pack_array(pk, 0);
		} else if (kl == 6 && !memcmp(k, "config", 6)) {
			const msgpack_object *c = &kv->val;
			msgpack_pack_map(pk, c->via.map.size);
			for (uint32_t j = 0; j < c->via.map.size; j++) {
				msgpack_pack_object(pk, c->via.map.ptr[j].key);
				if (c->via.map.ptr[j].key.via.str.size == 4 &&
				    !memcmp(c->via.map.ptr[j].key.via.str.ptr, "cpus", 4))
					msgpack_pack_uint64(pk, 0);
				else
					msgpack_pack_object(pk, c->via.map.ptr[j].val);
			}
		} else {
			msgpack_pack_object(pk, kv->val);
		}
	}
}

static void test_restore_zero_cpus_fails_cleanly(void **state)
{
	(void)state;
	if (!kvm_usable()) {
		print_message("# SKIP: /dev/kvm cannot be opened: %s\n", strerror(errno));
		skip();
	}
	struct vm_config cfg = {.name = "hsnap", .memory_mib = 16, .cpus = 1};
	struct vm *vm = NULL;
	assert_int_equal(vm_create(&cfg, &vm), 0);
	char snap[128], path[160];
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	int err = vm_snapshot(vm, snap);
	if (err)
		print_message("# vm_snapshot: %s\n", pv_errmsg());
	assert_int_equal(err, 0);
	vm_destroy(vm);
	snprintf(path, sizeof(path), "%s/%s", snap, SNAPSHOT_STATE_FILE);
	void *data;
	size_t len;
	assert_int_equal(snapshot_state_read(path, &data, &len), 0);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, data, len, NULL), MSGPACK_UNPACK_SUCCESS);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_zero_cpus(&pk, &up.data);
	assert_int_equal(snapshot_state_write(path, sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&up);
	free(data);
	struct vm_restore_opts o = {.name = "hsnap2", .paused = true};
	assert_int_equal(vm_restore(snap, &o, &vm), -EINVAL);
	print_message("# %s\n", pv_errmsg());
	assert_non_null(strstr(pv_errmsg(), "cpus"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_huge_container_count_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cpu_counts_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_arch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_zero_cpus_fails_cleanly, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
