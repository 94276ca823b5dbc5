/* options.c — parses the flags of `provium run` / `provium list` and merges the
 * PROVIUM_* environment under them (RUNNER.md: flags win over the environment). */
#include "runner/options.h"
#include "vmm/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

enum {
	O_TAGS = 256, O_EXCLUDE_TAGS, O_SLOW, O_TIMEOUT, O_BACKEND, O_EVENTS, O_FORMAT,
	O_JUNIT, O_KEEP, O_FAIL_FAST, O_SEED, O_SHUFFLE, O_NO_COLOR, O_CACHE_DIR, O_SHARD,
	O_INTERACTIVE, O_PAUSE,
};

static const struct option longopts[] = {
	{"jobs", required_argument, 0, 'j'},
	{"filter", required_argument, 0, 'f'},
	{"tags", required_argument, 0, O_TAGS},
	{"exclude-tags", required_argument, 0, O_EXCLUDE_TAGS},
	{"slow", no_argument, 0, O_SLOW},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{"backend", required_argument, 0, O_BACKEND},
	{"events", required_argument, 0, O_EVENTS},
	{"format", required_argument, 0, O_FORMAT},
	{"junit", required_argument, 0, O_JUNIT},
	{"keep", no_argument, 0, O_KEEP},
	{"fail-fast", no_argument, 0, O_FAIL_FAST},
	{"seed", required_argument, 0, O_SEED},
	{"shuffle", no_argument, 0, O_SHUFFLE},
	{"verbose", no_argument, 0, 'v'},
	{"quiet", no_argument, 0, 'q'},
	{"no-color", no_argument, 0, O_NO_COLOR},
	{"cache-dir", required_argument, 0, O_CACHE_DIR},
	{"shard", required_argument, 0, O_SHARD},
	{"interactive", no_argument, 0, O_INTERACTIVE},
	{"pause-on-failure", no_argument, 0, O_PAUSE},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

void opts_usage(const char *cmd, FILE *f)
{
	fprintf(f,
		"usage: provium %s [flags] [PATH...]\n"
		"  PATH: test files or directories (searched for *_test.lua and test_*.lua);\n"
		"        default: tests/ if it exists, else the current directory\n"
		"  -j, --jobs N          files in parallel (default: number of CPUs; PROVIUM_JOBS)\n"
		"  -f, --filter PATTERN  test name substring or Lua pattern\n"
		"  --tags a,b            only tests with one of these tags\n"
		"  --exclude-tags a,b    no test with one of these tags\n"
		"  --slow                also run tests with meta slow=true\n"
		"  --timeout S           per-test timeout in seconds (default 60; PROVIUM_TIMEOUT)\n"
		"  --backend B           auto|kvm|sandbox (PROVIUM_BACKEND)\n"
		"  --events FILE         msgpack event stream, - for stdout (PROVIUM_EVENTS)\n"
		"  --format F            pretty|tap|junit|json\n"
		"  --junit FILE          also write JUnit XML to FILE\n"
		"  --keep                leave VMs of failed tests running\n"
		"  --fail-fast           start no more files after the first failure\n"
		"  --seed N              seed for shuffling and randomness\n"
		"  --shuffle             shuffle file and test order (with --seed)\n"
		"  -v, --verbose         more output (test logs); -q, --quiet: less\n"
		"  --no-color            no colour (also NO_COLOR)\n"
		"  --cache-dir DIR       cache directory (PROVIUM_CACHE_DIR)\n"
		"  --shard K/N           only the K-th of N deterministic slices of the files\n"
		"  --interactive         load one file, run no test: a Lua prompt instead (implies -j1)\n"
		"  --pause-on-failure    a prompt when a test fails, before its teardown (implies -j1)\n",
		cmd);
}

char **opts_split_list(const char *s)
{
	size_t n = 1, len = strlen(s);
	for (const char *p = s; *p; p++)
		n += *p == ',';
	/* pointers, then a copy of the string the pointers point into */
	char **v = malloc((n + 1) * sizeof(char *) + len + 1);
	if (!v)
		return NULL;
	char *copy = (char *)(v + n + 1);
	memcpy(copy, s, len + 1);
	size_t i = 0;
	for (char *tok = copy, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = 0;
		if (*tok)
			v[i++] = tok;
	}
	v[i] = NULL;
	return v;
}

static int parse_uint(const char *s, const char *what, unsigned long long max,
		      unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return pv_error(EINVAL, "%s: '%s' is not a non-negative integer", what, s ? s : "");
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return pv_error(EINVAL, "%s: '%s' is not an integer in 0..%llu", what, s, max);
	*out = v;
	return 0;
}

static int parse_timeout(const char *s, const char *what, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e7)
		return pv_error(EINVAL, "%s: '%s' is not a positive number of seconds", what, s);
	*out = v;
	return 0;
}

static int parse_shard(struct run_opts *o, const char *s)
{
	unsigned k, n;
	char tail;
	if (sscanf(s, "%u/%u%c", &k, &n, &tail) != 2 || n == 0 || k == 0 || k > n)
		return pv_error(EINVAL, "--shard: '%s' is not K/N with 1 <= K <= N", s);
	o->shard_k = (int)k;
	o->shard_n = (int)n;
	return 0;
}

static int parse_backend(const char *s, const char *what)
{
	if (strcmp(s, "auto") && strcmp(s, "kvm") && strcmp(s, "sandbox"))
		return pv_error(EINVAL, "%s: '%s' is not auto, kvm or sandbox", what, s);
	return 0;
}

static int default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static char *own(struct run_opts *o, char *s)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(o->owned); i++)
		if (!o->owned[i])
			return o->owned[i] = s;
	return s; /* never reached: fewer owned strings than slots */
}

/* Environment first, flags parsed afterwards overwrite it. */
static int apply_env(struct run_opts *o)
{
	const char *e;
	unsigned long long v;
	int r;
	if ((e = getenv("PROVIUM_JOBS")) && *e) {
		if ((r = parse_uint(e, "PROVIUM_JOBS", 4096, &v)) < 0)
			return r;
		o->jobs = v ? (int)v : default_jobs();
	}
	if ((e = getenv("PROVIUM_BACKEND")) && *e) {
		if ((r = parse_backend(e, "PROVIUM_BACKEND")) < 0)
			return r;
		o->backend = e;
	}
	if ((e = getenv("PROVIUM_TIMEOUT")) && *e) {
		if ((r = parse_timeout(e, "PROVIUM_TIMEOUT", &o->timeout)) < 0)
			return r;
		o->timeout_set = true;
	}
	if ((e = getenv("PROVIUM_EVENTS")) && *e)
		o->events = e;
	if ((e = getenv("PROVIUM_CACHE_DIR")) && *e)
		o->cache_dir = e;
	if ((e = getenv("NO_COLOR")) && *e)
		o->no_color = true;
	o->kernel = getenv("PROVIUM_KERNEL");
	o->initrd = getenv("PROVIUM_INITRD");
	return 0;
}

int opts_parse(struct run_opts *o, int argc, char **argv)
{
	unsigned long long v;
	int r, c;
	memset(o, 0, sizeof(*o));
	o->argc = argc;
	o->argv = argv;
	o->jobs = default_jobs();
	o->timeout = 60;
	o->backend = "auto";
	o->format = FMT_PRETTY;
	if ((r = apply_env(o)) < 0)
		return r;

	optind = 0; /* reinitialise getopt: callers (and tests) parse more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":j:f:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if ((r = parse_uint(optarg, "--jobs", 4096, &v)) < 0)
				goto out;
			o->jobs = v ? (int)v : default_jobs();
			break;
		case 'f': o->filter = optarg; break;
		case O_TAGS:
			free(o->tags);
			o->tags = opts_split_list(optarg);
			break;
		case O_EXCLUDE_TAGS:
			free(o->exclude_tags);
			o->exclude_tags = opts_split_list(optarg);
			break;
		case O_SLOW: o->slow = true; break;
		case O_TIMEOUT:
			if ((r = parse_timeout(optarg, "--timeout", &o->timeout)) < 0)
				goto out;
			o->timeout_set = true;
			break;
		case O_BACKEND:
			if ((r = parse_backend(optarg, "--backend")) < 0)
				goto out;
			o->backend = optarg;
			break;
		case O_EVENTS: o->events = optarg; break;
		case O_FORMAT:
			if (!strcmp(optarg, "pretty")) o->format = FMT_PRETTY;
			else if (!strcmp(optarg, "tap")) o->format = FMT_TAP;
			else if (!strcmp(optarg, "junit")) o->format = FMT_JUNIT;
			else if (!strcmp(optarg, "json")) o->format = FMT_JSON;
			else {
				r = pv_error(EINVAL, "--format: '%s' is not pretty, tap, junit or json", optarg);
				goto out;
			}
			break;
		case O_JUNIT: o->junit = optarg; break;
		case O_KEEP: o->keep = true; break;
		case O_FAIL_FAST: o->fail_fast = true; break;
		case O_SEED:
			if ((r = parse_uint(optarg, "--seed", UINT64_MAX, &v)) < 0)
				goto out;
			o->seed = v;
			o->seed_set = true;
			break;
		case O_SHUFFLE: o->shuffle = true; break;
		case 'v': o->verbose = o->verbose < 0 ? 1 : o->verbose + 1; break;
		case 'q': o->verbose = -1; break;
		case O_NO_COLOR: o->no_color = true; break;
		case O_CACHE_DIR: o->cache_dir = optarg; break;
		case O_SHARD:
			if ((r = parse_shard(o, optarg)) < 0)
				goto out;
			break;
		case O_INTERACTIVE: o->interactive = true; break;
		case O_PAUSE: o->pause_on_failure = true; break;
		case 'h':
			opts_usage(argv[0], stdout);
			return 1;
		case ':':
			r = pv_error(EINVAL, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			if (optopt && optopt < 256)
				r = pv_error(EINVAL, "unknown option '-%c'", optopt);
			else
				r = pv_error(EINVAL, "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	/* GNU getopt permutes, so flags after PATHs work too: `provium run tests -j2` */
	o->paths = argv + optind;
	/* the prompt needs the terminal to itself */
	if (o->interactive || o->pause_on_failure)
		o->jobs = 1;
	o->npaths = argc - optind;
	if (!o->seed_set) {
		if (getrandom(&o->seed, sizeof(o->seed), GRND_NONBLOCK) != sizeof(o->seed))
			o->seed = pv_wall_ns();
		o->seed &= 0xffffffffull; /* short enough to type back in */
	}
	if (!o->cache_dir) {
		const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		char *p = NULL;
		if (x && *x)
			r = asprintf(&p, "%s/provium", x);
		else
			r = asprintf(&p, "%s/.cache/provium", home && *home ? home : "/tmp");
		if (r < 0) {
			r = -ENOMEM;
			goto out;
		}
		o->cache_dir = own(o, p);
	}
	return 0;
out:
	opts_free(o);
	return r;
}

void opts_free(struct run_opts *o)
{
	free(o->tags);
	free(o->exclude_tags);
	o->tags = o->exclude_tags = NULL;
	for (size_t i = 0; i < PV_ARRAY_SIZE(o->owned); i++) {
		free(o->owned[i]);
		o->owned[i] = NULL;
	}
}
