/* cmd_doctor.c — `provium doctor`: checks this host and says how to fix what is
 * missing. Each check prints "ok", "warn" or "FAIL" with a line saying what to do.
 * Exit 0 when tests can run on at least one backend (kvm with hardware
 * virtualization, or sandbox), else 3.
 *
 * Checks: /dev/kvm present and accessible, API version 12, what kind of KVM it is
 * (kvm_intel/kvm_amd vs kvm_pvm, ENVIRONMENT.md), a tiny guest run by the VMM,
 * /dev/net/tun, a network namespace with a bridge in it (made and removed in a
 * child), the Debian packages, the agent binary, the guest kernel and initramfs. */
#include "runner/commands.h"
#include "runner/doctor.h"
#include "runner/hostcheck.h"
#include "runner/kernel.h"
#include "runner/layout.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* /proc/cpuinfo advertises vmx or svm. */
static bool cpu_has_virt(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm")))
			found = true;
	fclose(f);
	return found;
}

static int nfail, nwarn;

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  ok    ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

/* level: "FAIL" or "warn"; fix may be NULL. */
static void bad(const char *level, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bad(const char *level, const char *fix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  %-5s ", level);
	vprintf(fmt, ap);
	printf("\n");
	if (fix)
		printf("        fix: %s\n", fix);
	va_end(ap);
	if (!strcmp(level, "FAIL"))
		nfail++;
	else
		nwarn++;
}

/* Returns true when /dev/kvm opens and speaks API 12. */
static bool check_kvm_device(void)
{
	struct stat st;
	if (stat("/dev/kvm", &st) < 0) {
		bad("FAIL", "enable virtualization (VT-x/AMD-V) in the firmware and load the "
		    "module: modprobe kvm_intel (or kvm_amd)", "/dev/kvm does not exist");
		return false;
	}
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		bad("FAIL", e == EACCES || e == EPERM ?
		    "add your user to the kvm group (sudo usermod -aG kvm $USER) and log in "
		    "again, or run as root" : "check dmesg for KVM errors",
		    "/dev/kvm is not accessible: %s", strerror(e));
		return false;
	}
	ok("/dev/kvm present and accessible");
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (v != KVM_API_VERSION) {
		bad("FAIL", "use a host kernel with a standard KVM", "KVM API version %d "
		    "(provium needs %d)", v, KVM_API_VERSION);
		return false;
	}
	ok("KVM API version %d", v);
	return true;
}

/* What kind of KVM; returns true when Linux guests can run. */
static bool check_kvm_kind(void)
{
	char why[256];
	if (doctor_linux_guests_ok(why, sizeof(why))) {
		ok("%s: Linux guests can run (kvm backend)", why);
		return true;
	}
	if (exists("/sys/module/kvm_pvm")) {
		bad("warn", "nothing to fix for the sandbox backend; full Linux-guest tests need "
		    "a host with kvm_intel or kvm_amd",
		    "KVM here is PVM (kvm_pvm), a software virtualizer: Linux guests cannot "
		    "reach user space on this host, so the sandbox backend will be used; "
		    "small freestanding test guests still run (slowly)");
	} else {
		bad("warn", cpu_has_virt() ? "modprobe kvm_intel (or kvm_amd)" :
		    "enable VT-x/AMD-V in the firmware, or run on a host with hardware "
		    "virtualization", "%s; the sandbox backend will be used", why);
	}
	return false;
}

/* Boots a few instructions that end the VM with exit code 42 (vm_start_exit_guest:
 * the exit port on x86, the exit register on arm64). */
static void check_vmm_runs(void)
{
	struct vm_config cfg = {.name = "doctor", .memory_mib = 8};
	struct vm *vm;
	uint64_t t0 = pv_now_ns();
	if (vm_create(&cfg, &vm)) {
		bad("FAIL", "see the message; `provium boot` shows the same error",
		    "the VMM cannot create a VM: %s", pv_errmsg());
		return;
	}
	struct vm_exit ex = {0};
	int err = vm_start_exit_guest(vm, 42);
	if (!err)
		err = vm_wait(vm, 10000, &ex);
	if (err || ex.reason != VM_EXIT_PORT || ex.code != 42)
		bad("FAIL", "report this with the message", "a tiny test guest did not run: %s",
		    err ? pv_errmsg() : ex.detail);
	else
		ok("the VMM runs a tiny guest (exit code 42 in %.1f ms)",
		   (pv_now_ns() - t0) / 1e6);
	vm_destroy(vm);
}

static bool check_tun(void)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		bad("FAIL", errno == ENOENT ? "modprobe tun" : "run as root (TAP devices need "
		    "CAP_NET_ADMIN)", "/dev/net/tun: %s", strerror(errno));
		return false;
	}
	close(fd);
	ok("/dev/net/tun opens (TAP devices for VM NICs)");
	return true;
}

/* In a child: a new network namespace, a bridge in it, then delete the bridge.
 * The namespace is anonymous and vanishes with the child, so nothing is left. */
static int netns_bridge_child(const char *brname)
{
	if (unshare(CLONE_NEWNET) < 0)
		return 10;
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return 11;
	int rc = 0;
	if (nl_connect(sk, NETLINK_ROUTE) < 0) {
		rc = 11;
		goto out;
	}
	struct rtnl_link *br = rtnl_link_bridge_alloc();
	if (!br) {
		rc = 12;
		goto out;
	}
	rtnl_link_set_name(br, brname);
	if (rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL) < 0)
		rc = 12;
	else if (rtnl_link_delete(sk, br) < 0)
		rc = 13;
	rtnl_link_put(br);
out:
	nl_socket_free(sk);
	return rc;
}

static bool check_netns_bridge(void)
{
	char brname[32];
	snprintf(brname, 16, "prov-doc%u", (unsigned)getpid() % 10000000u);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		bad("FAIL", NULL, "fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0)
		_exit(netns_bridge_child(brname));
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
	switch (rc) {
	case 0:
		ok("a network namespace with a bridge (%s) can be created (and was removed)",
		   brname);
		return true;
	case 10:
		bad("FAIL", "run as root, or allow user namespaces "
		    "(sysctl kernel.unprivileged_userns_clone=1)",
		    "cannot create a network namespace");
		return false;
	case 12:
		bad("FAIL", "modprobe bridge", "cannot create a bridge inside a network namespace");
		return false;
	default:
		bad("FAIL", "check that the kernel has netlink route support", "netns/bridge "
		    "check failed (code %d)", rc);
		return false;
	}
}

/* Checks that every one of pkgs[n] is installed (dpkg-query); reports the missing
 * ones at `level` ("FAIL" or "warn"), saying what they are for. */
static void check_pkgs(const char *const *pkgs, size_t n, const char *level, const char *what)
{
	char cmd[1024] = "dpkg-query -W -f='${Package} ${Status}\\n'";
	if (n > 16)
		n = 16; /* have[] below; the lists check_packages passes are shorter */
	for (size_t i = 0; i < n; i++) {
		strcat(cmd, " ");
		strcat(cmd, pkgs[i]);
	}
	strcat(cmd, " 2>/dev/null");
	FILE *p = popen(cmd, "r");
	if (!p) {
		bad("warn", NULL, "cannot run dpkg-query to check the %s", what);
		return;
	}
	bool have[16] = {0};
	char line[256];
	while (fgets(line, sizeof(line), p)) {
		char name[128];
		if (sscanf(line, "%127s", name) != 1 || !strstr(line, "install ok installed"))
			continue;
		char *colon = strchr(name, ':'); /* libfoo:amd64 */
		if (colon)
			*colon = 0;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(name, pkgs[i]))
				have[i] = true;
	}
	pclose(p);
	char missing[512] = "";
	for (size_t i = 0; i < n; i++)
		if (!have[i]) {
			strcat(missing, " ");
			strcat(missing, pkgs[i]);
		}
	if (!missing[0]) {
		ok("%s are installed (%zu Debian packages)", what, n);
		return;
	}
	char fix[700];
	snprintf(fix, sizeof(fix), "make deps (or: apt-get install%s)", missing);
	bad(level, fix, "missing Debian packages (%s):%s", what, missing);
}

/* The libraries provium links (the .deb's Depends), and what `provium kernel build`
 * runs (its Recommends, debian/control): without those only a prebuilt kernel can be
 * used. */
static void check_packages(void)
{
	static const char *const runtime[] = {
		"liblua5.4-0", "libmsgpackc2", "libjansson4", "libnl-3-200", "libnl-route-3-200",
		"libpcap0.8", "libnftables1",
	};
	static const char *const kbuild[] = {
		"busybox-static", "linux-source-6.1", "make", "gcc", "bc", "flex", "bison", "cpio",
		"libelf-dev", "libssl-dev", "xz-utils",
	};
	check_pkgs(runtime, PV_ARRAY_SIZE(runtime), "FAIL", "the runtime libraries");
	check_pkgs(kbuild, PV_ARRAY_SIZE(kbuild), "warn", "what `provium kernel build` needs");
}

static void check_agent(void)
{
	char p[PATH_MAX];
	if (layout_agent(p, sizeof(p)) == 0)
		ok("guest agent: %s", p);
	else
		bad("warn", "make (in a checkout), or reinstall provium", "%s; both backends need it",
		    pv_errmsg());
	const char *rootfs = layout_rootfs();
	if (rootfs)
		ok("sandbox root file system: %s", rootfs);
	else
		bad("warn", "make (in a checkout), or reinstall provium", "no sandbox root file "
		    "system (build/rootfs or lib/provium/rootfs next to %s); the sandbox backend "
		    "needs it", layout_exe_dir());
}

static void check_kernel(bool pvm_host)
{
	char vmlinux[PATH_MAX], initrd[PATH_MAX];
	if (kernel_paths(vmlinux, initrd, sizeof(vmlinux)) == 0) {
		ok("guest kernel: %s", vmlinux);
		ok("guest initramfs: %s", initrd);
	} else {
		bad("warn", "make kernel (or `provium kernel build`; about 4 minutes)",
		    "guest kernel/initramfs not built: %s", pv_errmsg());
	}
	if (pvm_host) {
		if (kernel_cached_paths(true, vmlinux, NULL, NULL, sizeof(vmlinux)) == 0)
			ok("PVM guest kernel (slow tier): %s", vmlinux);
		else
			bad("warn", "provium kernel build --pvm (only the slow tier needs it)",
			    "PVM variant of the guest kernel not built");
	}
}

int cmd_doctor(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: provium doctor\nChecks this host for KVM, TAP, namespaces, "
		       "packages and the guest kernel, and says how to fix what is missing.\n"
		       "Exit 0 when tests can run on at least one backend, else 3.\n");
		return 0;
	}
	nfail = nwarn = 0;
	struct utsname u;
	printf("Architecture\n");
	if (uname(&u) == 0 && strcmp(u.machine, vm_arch_name()) &&
	    !(strcmp(u.machine, "aarch64") == 0 && strcmp(vm_arch_name(), "arm64") == 0))
		bad("FAIL", "install the provium built for this host's architecture",
		    "this host is %s, this provium runs %s guests (KVM runs guests of the "
		    "host's own architecture)", u.machine, vm_arch_name());
	else
		ok("%s: provium's VMM runs %s guests", uname(&u) == 0 ? u.machine : "?",
		   vm_arch_name());
	printf("KVM\n");
	bool kvm = check_kvm_device();
	bool linux_guests = false;
	if (kvm) {
		linux_guests = check_kvm_kind();
		check_vmm_runs();
	}
	printf("Networking\n");
	bool tun = check_tun();
	bool netns = check_netns_bridge();
	printf("Software\n");
	check_packages();
	check_agent();
	check_kernel(exists("/sys/module/kvm_pvm"));

	char why[256];
	bool sandbox = pv_sandbox_ok(why, sizeof(why)) && netns;
	bool kvm_backend = linux_guests && tun && netns;
	printf("Backends\n");
	if (kvm_backend)
		ok("kvm: Linux microVMs");
	else
		printf("  no    kvm: %s\n", linux_guests ? "networking checks failed" :
		       "no hardware KVM here");
	if (sandbox)
		ok("sandbox: namespaces on this host");
	else
		printf("  no    sandbox: %s\n", netns ? why : "network namespaces do not work");
	printf("\n%d failed, %d warnings. ", nfail, nwarn);
	if (kvm_backend || sandbox) {
		printf("Tests can run here (backend auto = %s).\n", kvm_backend ? "kvm" : "sandbox");
		return 0;
	}
	printf("Tests cannot run on any backend here: fix the FAIL lines above.\n");
	return 3;
}
