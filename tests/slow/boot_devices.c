/* boot_devices.c — the slow tier's Linux boot with every virtio device attached
 * (tests/slow/linux_boot.sh builds and runs it): serial + virtio-blk (a sparse
 * image of --disk-mib with one MBR partition) + virtio-console + virtio-rng +
 * virtio-net (backed by one end of a SOCK_SEQPACKET socketpair, so no host
 * interface is involved) + virtio-vsock (guest CID 3), booted until every --until
 * text has appeared on the console, the guest exits, or --timeout passes. Prints
 * the console log, then "## key=value" lines with what the devices saw.
 *
 *   boot_devices --kernel VMLINUX [--initrd F] [--cmdline S] [--timeout SEC]
 *                [--disk-mib N] [--until TEXT]...
 * Exit status: 0 when every --until text appeared (and DRIVER_OK), 1 otherwise, 2 on setup errors. */
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#define MAX_UNTIL 16
#define LOG_MAX (1u << 20)

/* One MBR partition (type 0x83) from sector 2048 to the end, written host-side, so
 * the kernel's partition scan (which reads the disk through the device) prints
 * " vda: vda1". */
static int write_mbr(struct virtio_blk *b)
{
	uint8_t mbr[512] = {0};
	uint32_t start = 2048, count = (uint32_t)(virtio_blk_size(b) / 512) - start;
	uint8_t *e = mbr + 446;
	e[4] = 0x83;
	memcpy(e + 8, &start, 4);
	memcpy(e + 12, &count, 4);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	return virtio_blk_write_sectors(b, 0, mbr, 1);
}

/* Buffers the vsock driver has put on its event queue (queue 2; it fills it at
 * the end of its probe). */
static unsigned event_bufs(struct virtio_vsock *s)
{
	struct virtqueue *q = &virtio_vsock_vdev(s)->vq[2];
	return q->ready && q->avail ? __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE) : 0;
}

int main(int argc, char **argv)
{
	const char *kernel = NULL, *initrd = NULL, *cmdline = "console=ttyS0";
	const char *until[MAX_UNTIL];
	unsigned nuntil = 0, timeout = 600, disk_mib = 8;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--kernel")) kernel = argv[i + 1];
		else if (!strcmp(argv[i], "--initrd")) initrd = argv[i + 1];
		else if (!strcmp(argv[i], "--cmdline")) cmdline = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout")) timeout = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--disk-mib")) disk_mib = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--until") && nuntil < MAX_UNTIL) until[nuntil++] = argv[i + 1];
		else {
			fprintf(stderr, "boot_devices: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (!kernel) {
		fprintf(stderr, "boot_devices: --kernel is required\n");
		return 2;
	}
	struct vm_config cfg = {.name = "linux-devices", .kernel = kernel, .initrd = initrd,
				.cmdline = cmdline, .memory_mib = 256, .cpus = 1};
	struct vm *vm;
	struct virtio_blk *blk;
	struct virtio_console *con;
	struct virtio_rng *rng;
	struct virtio_net *net;
	struct virtio_vsock *vsock;
	int sp[2];
	struct virtio_blk_opts bo = {.id = "vda", .size = (uint64_t)disk_mib << 20,
				     .serial = "provium-slow"};
	if (vm_create(&cfg, &vm) < 0) {
		fprintf(stderr, "boot_devices: %s\n", pv_errmsg());
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
		fprintf(stderr, "boot_devices: socketpair: %m\n");
		vm_destroy(vm);
		return 2;
	}
	struct virtio_net_opts no = {.fd = sp[0], .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
	if (virtio_net_create("net0", &no, &net) < 0) {
		fprintf(stderr, "boot_devices: %s\n", pv_errmsg());
		close(sp[1]);
		vm_destroy(vm);
		return 2;
	}
	/* Linux 6.1's virtio_net prints nothing at probe when the device offers a
	 * MAC; without VIRTIO_NET_F_MAC virtnet_probe() prints "virtio_net virtioN:
	 * Assigned random MAC address ...", the console's proof that the driver
	 * probed this device. The host side also checks DRIVER_OK and the features. */
	virtio_net_vdev(net)->host_features &= ~(1ull << VIRTIO_NET_F_MAC);
	if (virtio_blk_create(&bo, &blk) < 0 || write_mbr(blk) < 0 || virtio_blk_attach(blk, vm) < 0 ||
	    virtio_console_create("hvc0", &con) < 0 || virtio_console_attach(con, vm) < 0 ||
	    virtio_rng_create("rng0", &rng) < 0 || virtio_rng_attach(rng, vm) < 0 ||
	    virtio_net_attach(net, vm) < 0 ||
	    virtio_vsock_create("vsock0", 3, &vsock) < 0 || virtio_vsock_attach(vsock, vm) < 0 ||
	    vm_start(vm) < 0) {
		fprintf(stderr, "boot_devices: %s\n", pv_errmsg());
		vm_destroy(vm);
		return 2;
	}
	char *log = malloc(LOG_MAX + 1);
	size_t len = 0;
	struct vm_exit ex = {0};
	bool exited = false, all = false;
	uint64_t t0 = pv_now_ns();
	while (!all && !exited && pv_now_ns() - t0 < (uint64_t)timeout * 1000000000ull) {
		exited = vm_wait(vm, 1000, &ex) == 0;
		len = vm_console_log(vm, log, LOG_MAX);
		log[len] = 0;
		all = true;
		for (unsigned i = 0; i < nuntil; i++)
			all = all && strstr(log, until[i]);
		/* virtnet_probe() sets DRIVER_OK last; virtio_vsock_probe() sets it and
		 * then fills the rx and event queues. */
		all = all && (virtio_net_vdev(net)->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
		      (virtio_vsock_vdev(vsock)->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
		      event_bufs(vsock) > 0;
	}
	double secs = (double)(pv_now_ns() - t0) / 1e9;
	vm_stop(vm);
	vm_wait(vm, 10000, &ex);
	len = vm_console_log(vm, log, LOG_MAX);
	log[len] = 0;
	fwrite(log, 1, len, stdout);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(blk, &st);
	printf("\n## seconds=%.1f\n## exit=%s\n## blk_size=%lu\n## blk_reads=%lu\n"
	       "## blk_read_bytes=%lu\n## rng_bytes=%lu\n## all_seen=%d\n", secs,
	       exited ? vm_exit_reason_name(ex.reason) : "stopped by the test",
	       (unsigned long)virtio_blk_size(blk), (unsigned long)st.reads,
	       (unsigned long)st.read_bytes, (unsigned long)virtio_rng_bytes(rng), all);
	struct virtio_dev *nv = virtio_net_vdev(net), *sv = virtio_vsock_vdev(vsock);
	struct virtio_net_counters nc;
	virtio_net_counters(net, &nc);
	unsigned ev_posted = event_bufs(vsock);
	printf("## net_status=%u\n## net_driver_ok=%d\n## net_features=%#lx\n"
	       "## net_tx_packets=%lu\n## vsock_status=%u\n## vsock_driver_ok=%d\n"
	       "## vsock_event_bufs=%u\n", nv->status,
	       !!(nv->status & VIRTIO_CONFIG_S_DRIVER_OK), (unsigned long)nv->driver_features,
	       (unsigned long)nc.tx_packets, sv->status,
	       !!(sv->status & VIRTIO_CONFIG_S_DRIVER_OK), ev_posted);
	vm_destroy(vm);
	close(sp[1]);
	free(log);
	return all ? 0 : 1;
}
