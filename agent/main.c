/* main.c — provium-agent: the static binary that serves the host–agent protocol
 * (docs/protocol.md) inside the guest (AF_VSOCK, started by /init) or on the host
 * for the sandbox backend (an inherited socket fd) and in tests (a unix socket).
 * One thread per connection; see conn.c. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

bool agent_allow_reboot;

static void usage(FILE *to)
{
	fprintf(to,
		"usage: provium-agent (--vsock [PORT] | --unix PATH | --fd N) [--allow-reboot]\n"
		"  --vsock [PORT]   listen on AF_VSOCK (default port %d), many connections\n"
		"  --unix PATH      listen on a unix socket, many connections\n"
		"  --fd N           serve the connected socket N; exit when it closes\n"
		"  --allow-reboot   the poweroff/reboot ops call reboot(2) (in the guest)\n"
		"protocol version %d\n",
		PV_AGENT_VSOCK_PORT, PROTOCOL_VERSION);
}

void agent_exit(int status)
{
	procs_kill_all();
	fflush(stderr);
	_exit(status);
}

static void *conn_thread(void *arg)
{
	conn_serve((int)(intptr_t)arg);
	return NULL;
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	sigwait(set, &sig);
	fprintf(stderr, "provium-agent: %s, stopping\n", strsignal(sig));
	agent_exit(0);
}

static int start_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&th, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -rc;
}

static int serve_listener(int lfd, const char *what)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				if (errno != EINTR && errno != ECONNABORTED)
					usleep(100 * 1000);
				continue;
			}
			fprintf(stderr, "provium-agent: accept on %s: %s\n", what,
				strerror(errno));
			return 1;
		}
		if (start_thread(conn_thread, (void *)(intptr_t)fd) < 0) {
			fprintf(stderr, "provium-agent: no thread for a connection\n");
			close(fd);
		}
	}
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "provium-agent: unix socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		goto err;
	return fd;
err:
	fprintf(stderr, "provium-agent: listen on %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int listen_vsock(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto err;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		goto err;
	return fd;
err:
	fprintf(stderr, "provium-agent: listen on vsock port %u: %s\n", port,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	static sigset_t sigs;
	const char *unix_path = NULL;
	long vsock_port = -1, inherit_fd = -1;
	int lfd;

	for (int i = 1; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "--vsock") == 0) {
			vsock_port = PV_AGENT_VSOCK_PORT;
			if (i + 1 < argc && argv[i + 1][0] != '-') {
				vsock_port = strtol(argv[++i], &end, 10);
				if (*end || vsock_port < 0 || vsock_port > UINT32_MAX)
					goto bad;
			}
		} else if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) {
			unix_path = argv[++i];
		} else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
			inherit_fd = strtol(argv[++i], &end, 10);
			if (*end || inherit_fd < 0 || inherit_fd > 65535)
				goto bad;
		} else if (strcmp(argv[i], "--allow-reboot") == 0) {
			agent_allow_reboot = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("provium-agent protocol %d\n", PROTOCOL_VERSION);
			return 0;
		} else {
			goto bad;
		}
	}
	if ((vsock_port >= 0) + (unix_path != NULL) + (inherit_fd >= 0) != 1)
		goto bad;

	/* Termination signals are handled by one thread so children can be killed;
	 * children unblock them again before exec. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Orphaned grandchildren come to us and are reaped instead of piling up. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	procs_start_reaper();
	if (start_thread(signal_thread, &sigs) < 0)
		return 1;

	if (inherit_fd >= 0) {
		if (fcntl((int)inherit_fd, F_SETFD, FD_CLOEXEC) < 0) {
			fprintf(stderr, "provium-agent: --fd %ld: %s\n", inherit_fd,
				strerror(errno));
			return 1;
		}
		conn_serve((int)inherit_fd);
		agent_exit(0);
	}
	lfd = unix_path ? listen_unix(unix_path) : listen_vsock((unsigned)vsock_port);
	if (lfd < 0)
		return 1;
	return serve_listener(lfd, unix_path ? unix_path : "vsock");
bad:
	usage(stderr);
	return 2;
}
