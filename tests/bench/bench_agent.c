/* bench_agent.c — provium-agent round trips over a unix socket, natively: a no-op
 * request (ping), `exec true` through the shell and `exec /bin/true` without it, and
 * whole-file transfer MB/s both ways (streamed write_file / read_file of 64 MiB).
 * Prints a small table. Usage: bench_agent BUILD */
#include "tests/unit/agent_client.h"

#include <stdint.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void row(const char *what, uint64_t *ns, int n)
{
	uint64_t sum = 0;

	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	for (int i = 0; i < n; i++)
		sum += ns[i];
	printf("%-28s %8d %10.1f %10.1f %10.1f\n", what, n, (double)sum / n / 1000.0,
	       (double)ns[n / 2] / 1000.0, (double)ns[n * 99 / 100] / 1000.0);
}

static int timed_calls(struct ac *a, const char *op, const char *cmd, uint64_t *ns, int n)
{
	for (int i = 0; i < n; i++) {
		struct ac_rep r;
		uint64_t t0 = ac_now_ns();
		int rc = cmd ? ac_callf(a, &r, op, "cmd=s", cmd) : ac_callf(a, &r, op, "");

		ns[i] = ac_now_ns() - t0;
		if (rc < 0 || !r.f->ok) {
			fprintf(stderr, "bench_agent: %s failed\n", op);
			ac_rep_free(&r);
			return -1;
		}
		ac_rep_free(&r);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/provium-bench-agent.XXXXXX", sock[128], file[160];
	const size_t total = 64u << 20, chunk = PV_PROTO_CHUNK;
	static uint64_t ns[5000];
	struct ac a;
	pid_t agent;
	uint8_t *buf;
	uint64_t id, t0, wr_ns, rd_ns, got = 0;
	int status = 0;

	if (argc > 1)
		setenv("PROVIUM_BUILD", argv[1], 1);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(file, sizeof(file), "%s/blob", dir);
	agent = fork();
	if (agent == 0) {
		execl(ac_agent_path(), ac_agent_path(), "--unix", sock, (char *)NULL);
		_exit(127);
	}
	if (ac_connect_unix(&a, sock) < 0 || ac_hello(&a) < 0) {
		fprintf(stderr, "bench_agent: cannot reach %s\n", ac_agent_path());
		status = 1;
		goto out;
	}
	printf("%-28s %8s %10s %10s %10s\n", "agent round trip (unix)", "n", "mean us",
	       "p50 us", "p99 us");
	if (timed_calls(&a, PV_OP_PING, NULL, ns, 5000) < 0) {
		status = 1;
		goto out;
	}
	row("ping (no-op request)", ns, 5000);
	if (timed_calls(&a, PV_OP_EXEC, "true", ns, 300) < 0) {
		status = 1;
		goto out;
	}
	row("exec true (/bin/sh -c)", ns, 300);
	/* a plain command runs without the shell (agent/exec.c sh_run_direct) */
	if (timed_calls(&a, PV_OP_EXEC, "/bin/true", ns, 300) < 0) {
		status = 1;
		goto out;
	}
	row("exec /bin/true (no shell)", ns, 300);

	/* write_file: streamed chunks, timed until the agent's reply */
	buf = malloc(chunk);
	memset(buf, 0x5a, chunk);
	t0 = ac_now_ns();
	id = ac_sendf(&a, PV_OP_WRITE_FILE, "path=s stream=b", file, 1);
	for (size_t off = 0; off < total; off += chunk) {
		struct pv_fbuf b;

		pv_fbuf_init(&b);
		pv_enc_stream(&b, id, PV_STREAM_DATA, buf, chunk);
		pv_fbuf_finish(&b);
		ac_send_raw(&a, b.sb.data, b.sb.size);
		pv_fbuf_destroy(&b);
	}
	{
		struct pv_fbuf b;
		struct ac_rep r = { 0 };

		pv_fbuf_init(&b);
		pv_enc_eof(&b, id, PV_STREAM_DATA);
		pv_fbuf_finish(&b);
		ac_send_raw(&a, b.sb.data, b.sb.size);
		pv_fbuf_destroy(&b);
		if (ac_wait(&a, id, &r, 120000) < 0 || !r.f->ok) {
			fprintf(stderr, "bench_agent: write_file failed\n");
			status = 1;
		}
		ac_rep_free(&r);
	}
	wr_ns = ac_now_ns() - t0;
	free(buf);

	/* read_file: frames counted as they arrive */
	t0 = ac_now_ns();
	id = ac_sendf(&a, PV_OP_READ_FILE, "path=s", file);
	for (;;) {
		struct pv_frame *f = ac_next_for(&a, id, 120000);
		const uint8_t *d;
		size_t n;

		if (!f) {
			status = 1;
			break;
		}
		if (f->kind == PV_FRAME_STREAM) {
			got += f->data_len;
			ac_frame_free(f);
			continue;
		}
		if (f->ok && pv_map_bytes(f->result, "data", &d, &n) == 0)
			got += n;
		ac_frame_free(f);
		break;
	}
	rd_ns = ac_now_ns() - t0;
	if (got != total) {
		fprintf(stderr, "bench_agent: read back %llu of %zu bytes\n",
			(unsigned long long)got, total);
		status = 1;
	}
	printf("\n%-28s %10s %10s\n", "file transfer (64 MiB)", "MB/s", "seconds");
	printf("%-28s %10.0f %10.3f\n", "write_file (host->agent)",
	       (double)total / 1e6 / ((double)wr_ns / 1e9), (double)wr_ns / 1e9);
	printf("%-28s %10.0f %10.3f\n", "read_file (agent->host)",
	       (double)total / 1e6 / ((double)rd_ns / 1e9), (double)rd_ns / 1e9);
out:
	ac_close(&a);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	unlink(file);
	unlink(sock);
	rmdir(dir);
	return status;
}
