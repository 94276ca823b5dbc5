/* cmd_boot.c — `provium boot`: boot one VM with its serial console on this
 * terminal, for debugging kernels and test guests by hand.
 *
 *   provium boot --kernel K [--initrd I] [--cmdline C] [--memory M] [--cpus N]
 *                [--stats[=FILE]]
 *
 * When stdin is a terminal it is put in raw mode and every key goes to the guest;
 * Ctrl-A x quits (Ctrl-A Ctrl-A sends a Ctrl-A, Ctrl-A h lists these), like QEMU.
 * Otherwise stdin is forwarded as it comes. Exit status: the guest's exit-port code; 0 after Ctrl-A x
 * or a guest reset; 1 when the guest crashed (triple fault, KVM error); 2 for bad
 * arguments or an unusable kernel image; 3 when /dev/kvm is missing or unusable;
 * 130 after SIGINT, SIGTERM or SIGHUP (the VM is stopped first); 141 when
 * the output was closed (a pipe's reader went away), whatever the guest is doing. */
#include "runner/commands.h"
#include "vmm/stats.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t got_signal;
/* Set when stdout is gone (EPIPE, a hung-up terminal): the VM is stopped. */
static volatile sig_atomic_t out_closed;
/* Set once the VM is being stopped: console output still pending is dropped. */
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: provium boot --kernel K [--initrd I] [--cmdline C] [--memory M] [--cpus N]\n"
		"  --kernel K    ELF vmlinux or bzImage (on PVM hosts boot the ELF vmlinux)\n"
		"  --initrd I    initramfs to load\n"
		"  --cmdline C   kernel command line (default \"console=ttyS0\")\n"
		"  --memory M    guest RAM: MiB, or with a suffix: 512M, 1G (default 128M)\n"
		"  --cpus N      vCPUs (default 1)\n"
		"  --stats[=F]   when the VM ends, print its exits by reason (KVM's counters)\n"
		"                and those handled here by port / MMIO address, to stderr or F\n"
		"The serial console is this terminal: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.\n"
		"Exits with the code the guest writes to port 0xf4.\n");
}

static int parse_memory(const char *s, unsigned *mib)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'G' || *end == 'g')
		v *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		end++;
	if ((*end == 'i' || *end == 'B') && end[1] == 0)
		end++;
	else if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end || v == 0 || v > 1u << 20)
		return -1;
	*mib = (unsigned)v;
	return 0;
}

/* Prints why /dev/kvm cannot be used and returns 3, or returns 0 when it can. */
static int check_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		fprintf(stderr, "provium boot: cannot open /dev/kvm: %s\n", strerror(e));
		if (e == ENOENT || e == ENODEV || e == ENXIO)
			fprintf(stderr, "  KVM is not available: enable virtualization in the "
				"firmware and load the module (modprobe kvm_intel, or kvm_amd).\n");
		else if (e == EACCES || e == EPERM)
			fprintf(stderr, "  add your user to the 'kvm' group and log in again "
				"(sudo usermod -aG kvm $USER), or run as root.\n");
		fprintf(stderr, "  `provium doctor` checks the whole host.\n");
		return 3;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (v != KVM_API_VERSION) {
		fprintf(stderr, "provium boot: /dev/kvm has API version %d, need %d; "
			"this kernel's KVM is unusable (see `provium doctor`)\n", v,
			KVM_API_VERSION);
		return 3;
	}
	return 0;
}

/* Console output. The vCPU thread that handles a THR write appends the byte here,
 * and the main thread writes the buffer to stdout: whole lines as soon as they end
 * (the vCPU thread wakes it through `wake`), a line's unfinished tail once the guest
 * has printed nothing for OUT_TAIL_MS (a prompt, an echoed key). One write(2) per
 * line rather than per byte: a Linux boot prints some 24 000 bytes, and each write
 * wakes whoever reads the pipe (docs/vmm.md, "What the boot costs"). When the buffer
 * is full the vCPU waits for room; a stop or a closed output ends the wait and pending
 * output is dropped, so a reader that never reads cannot keep the VM from stopping. */
#define OUT_CAP (64u << 10)
#define OUT_TAIL_MS 2
static struct {
	pthread_mutex_t lock;
	pthread_cond_t room;
	char buf[OUT_CAP];
	size_t len;
	bool woken; /* `wake` was written since the main thread last drained it */
	int wake;   /* eventfd */
} out = {.lock = PTHREAD_MUTEX_INITIALIZER, .room = PTHREAD_COND_INITIALIZER, .wake = -1};

static void console_to_stdout(void *opaque, const char *buf, size_t len)
{
	(void)opaque;
	pthread_mutex_lock(&out.lock);
	while (len && !out_closed && !stopping) {
		if (out.len == OUT_CAP) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L;
			if (ts.tv_nsec >= 1000000000L)
				ts.tv_sec++, ts.tv_nsec -= 1000000000L;
			pthread_cond_timedwait(&out.room, &out.lock, &ts);
			continue;
		}
		size_t n = PV_MIN(len, OUT_CAP - out.len);
		memcpy(out.buf + out.len, buf, n);
		out.len += n;
		bool line = memchr(buf, '\n', n) || out.len == OUT_CAP;
		buf += n;
		len -= n;
		if (line && !out.woken) {
			out.woken = true;
			uint64_t one = 1;
			ssize_t w = write(out.wake, &one, sizeof(one));
			(void)w;
		}
	}
	pthread_mutex_unlock(&out.lock);
}

/* Writes what the buffer holds to stdout: its whole lines, and the unfinished tail
 * too with `all` (or when no line ends in a full buffer). Main thread only. */
static void flush_out(bool all)
{
	static char chunk[OUT_CAP];
	pthread_mutex_lock(&out.lock);
	if (out.woken) {
		uint64_t v;
		ssize_t r = read(out.wake, &v, sizeof(v));
		(void)r;
		out.woken = false;
	}
	size_t n = out.len;
	if (!all && n < OUT_CAP) {
		while (n && out.buf[n - 1] != '\n')
			n--;
	}
	memcpy(chunk, out.buf, n);
	memmove(out.buf, out.buf + n, out.len - n);
	out.len -= n;
	pthread_cond_broadcast(&out.room);
	pthread_mutex_unlock(&out.lock);
	/* A write blocked on a full pipe ends with EINTR on SIGINT/SIGTERM/SIGHUP (the
	 * handlers are installed without SA_RESTART). */
	for (const char *p = chunk; n && !out_closed && !got_signal;) {
		ssize_t r = write(1, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			out_closed = 1;
			break;
		}
		p += r;
		n -= (size_t)r;
	}
}

static bool out_pending(void)
{
	pthread_mutex_lock(&out.lock);
	bool p = out.len > 0;
	pthread_mutex_unlock(&out.lock);
	return p;
}

/* Sets `stopping` and lets a vCPU waiting for room in the buffer go on. */
static void stop_output(void)
{
	pthread_mutex_lock(&out.lock);
	stopping = 1;
	pthread_cond_broadcast(&out.room);
	pthread_mutex_unlock(&out.lock);
}

struct term {
	bool raw;
	struct termios saved;
};

static void term_raw(struct term *t)
{
	if (!isatty(0) || tcgetattr(0, &t->saved) < 0)
		return;
	struct termios r = t->saved;
	cfmakeraw(&r);
	/* Keep output processing so a guest's bare "\n" still returns the carriage. */
	r.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(0, TCSANOW, &r) == 0)
		t->raw = true;
}

static void term_restore(struct term *t)
{
	if (t->raw)
		tcsetattr(0, TCSANOW, &t->saved);
	t->raw = false;
}

/* Forwards keys, handling the Ctrl-A escape; returns true when asked to quit. */
static bool forward_keys(struct vm *vm, const char *buf, size_t n, bool *esc)
{
	char out[512];
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (*esc) {
			*esc = false;
			if (c == 'x' || c == 'X')
				return true;
			if (c == 1)
				out[o++] = 1;
			else if (c == 'h' || c == 'H' || c == '?')
				fprintf(stderr, "\r\nC-a x    quit\r\nC-a C-a  send C-a\r\n"
					"C-a h    this help\r\n");
			continue; /* other escapes: dropped */
		}
		if (c == 1) {
			*esc = true;
			continue;
		}
		out[o++] = c;
	}
	if (o)
		vm_console_input(vm, out, o);
	return false;
}

/* --stats: the exits of the VM that just ended (vm_exit_stats before vm_destroy). */
static void print_stats(struct vm *vm, const char *file)
{
	struct vm_exit_stats st;
	if (vm_exit_stats(vm, &st)) {
		fprintf(stderr, "provium boot: --stats: %s\n", pv_errmsg());
		return;
	}
	FILE *f = file ? fopen(file, "w") : stderr;
	if (!f) {
		fprintf(stderr, "provium boot: --stats=%s: %s\n", file, strerror(errno));
		return;
	}
	vm_exit_stats_print(&st, f);
	if (f != stderr)
		fclose(f);
}

int cmd_boot(int argc, char **argv)
{
	static const struct option opts[] = {
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'c'},
		{"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'n'},
		{"stats", optional_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct vm_config cfg = {.name = "boot", .cmdline = "console=ttyS0",
				.console_out = console_to_stdout};
	int c;
	bool stats = false;
	const char *stats_file = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "k:i:c:m:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'm':
			if (parse_memory(optarg, &cfg.memory_mib)) {
				fprintf(stderr, "provium boot: --memory %s: expected MiB like 256 or 1G\n",
					optarg);
				return 2;
			}
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 64) {
				fprintf(stderr, "provium boot: --cpus %s: expected 1..64\n", optarg);
				return 2;
			}
			cfg.cpus = (unsigned)v;
			break;
		}
		case 's': stats = true; stats_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !cfg.kernel) {
		fprintf(stderr, "provium boot: %s\n",
			cfg.kernel ? "unexpected argument" : "--kernel is required");
		usage(stderr);
		return 2;
	}
	if (access(cfg.kernel, R_OK) < 0) {
		fprintf(stderr, "provium boot: kernel %s: %s\n", cfg.kernel, strerror(errno));
		return 2;
	}
	int rc = check_kvm();
	if (rc)
		return rc;

	if ((out.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		fprintf(stderr, "provium boot: eventfd: %s\n", strerror(errno));
		return 3;
	}
	struct vm *vm;
	int err = vm_create(&cfg, &vm);
	if (err) {
		fprintf(stderr, "provium boot: %s\n", pv_errmsg());
		/* EINVAL is our own check of --memory/--cpus (a bad argument); anything
		 * else is KVM refusing the VM. */
		return err == -EINVAL ? 2 : 3;
	}
	/* Raw mode before the guest runs: keys typed as soon as it prints (Ctrl-A x)
	 * must not sit in the terminal's line buffer. */
	struct term t = {0};
	term_raw(&t);
	if ((err = vm_start(vm))) {
		term_restore(&t);
		fprintf(stderr, "provium boot: %s\n", pv_errmsg());
		vm_destroy(vm);
		close(out.wake);
		return 2;
	}

	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed output pipe must not kill us with the terminal left raw. */
	signal(SIGPIPE, SIG_IGN);

	bool stdin_open = true, esc = false, quit = false;
	struct vm_exit ex;
	for (;;) {
		if (vm_wait(vm, 0, &ex) == 0) {
			if (!stopping)
				flush_out(true); /* the guest's last words, a tail without "\n" too */
			break;
		}
		if (got_signal || quit || out_closed) {
			if (!stopping) {
				stop_output();
				vm_stop(vm);
			}
			vm_wait(vm, 100, &ex); /* no busy loop while the vCPUs stop */
			continue;
		}
		/* stdout too: a closed pipe or a hung-up terminal shows as POLLERR/POLLHUP
		 * even while the guest prints nothing */
		struct pollfd p[3] = {{.fd = 1, .events = 0}, {.fd = out.wake, .events = POLLIN},
				      {.fd = 0, .events = POLLIN}};
		bool tail = out_pending();
		int n = poll(p, stdin_open ? 3 : 2, tail ? OUT_TAIL_MS : 50);
		if (n == 0 && tail)
			flush_out(true); /* nothing more for OUT_TAIL_MS: the tail too */
		if (n <= 0)
			continue;
		if (p[0].revents & (POLLERR | POLLHUP)) {
			out_closed = 1;
			continue;
		}
		if (p[1].revents & POLLIN)
			flush_out(false);
		if (!stdin_open || !(p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char buf[512];
		ssize_t r = read(0, buf, sizeof(buf));
		if (r <= 0) {
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			stdin_open = false; /* EOF: keep running, stop reading */
			continue;
		}
		if (t.raw)
			quit = forward_keys(vm, buf, r, &esc);
		else
			vm_console_input(vm, buf, r);
	}
	term_restore(&t);
	if (stats)
		print_stats(vm, stats_file);
	vm_destroy(vm);
	close(out.wake);

	switch (ex.reason) {
	case VM_EXIT_PORT:
		return ex.code & 0xff;
	case VM_EXIT_STOPPED:
		if (got_signal) {
			fprintf(stderr, "\nprovium boot: interrupted\n");
			return 130;
		}
		if (out_closed) {
			/* like a program killed by SIGPIPE: 141 */
			fprintf(stderr, "provium boot: the output was closed; the VM was stopped\n");
			return 128 + SIGPIPE;
		}
		return 0;
	case VM_EXIT_RESET:
		fprintf(stderr, "\nprovium boot: guest reset: %s\n", ex.detail);
		return 0;
	default:
		fprintf(stderr, "\nprovium boot: guest ended (%s): %s\n",
			vm_exit_reason_name(ex.reason), ex.detail);
		return 1;
	}
}
