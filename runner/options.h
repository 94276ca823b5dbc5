/* options.h — the selection and run flags shared by `provium run` and `provium list`
 * (RUNNER.md "Command line"), merged with the PROVIUM_* environment (flags win). */
#ifndef PROVIUM_OPTIONS_H
#define PROVIUM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum run_format { FMT_PRETTY, FMT_TAP, FMT_JUNIT, FMT_JSON };

struct run_opts {
	int jobs;                 /* -j / PROVIUM_JOBS; default: number of CPUs */
	const char *filter;       /* -f */
	char **tags;              /* --tags, NULL-terminated, or NULL */
	char **exclude_tags;      /* --exclude-tags */
	bool slow;
	double timeout;           /* --timeout / PROVIUM_TIMEOUT; 60 when not set */
	bool timeout_set;
	const char *backend;      /* auto|kvm|sandbox (--backend / PROVIUM_BACKEND) */
	const char *events;       /* --events / PROVIUM_EVENTS: FILE, "-" or NULL */
	enum run_format format;
	const char *junit;        /* --junit FILE */
	bool keep, fail_fast, shuffle, no_color;
	bool interactive;         /* --interactive: a prompt instead of running the tests */
	bool pause_on_failure;    /* --pause-on-failure: a prompt when a test fails */
	uint64_t seed;            /* --seed; random when not given (printed in run_start) */
	bool seed_set;
	int verbose;              /* -v count; -1 with -q */
	const char *cache_dir;    /* --cache-dir / PROVIUM_CACHE_DIR / $XDG_CACHE_HOME/provium */
	int shard_k, shard_n;     /* --shard K/N; 0/0 when not sharding */
	const char *kernel, *initrd; /* PROVIUM_KERNEL / PROVIUM_INITRD (read by the VM layer) */
	char **paths;             /* PATH arguments (not owned) */
	int npaths;
	int argc;                 /* the whole command line, for run_start */
	char **argv;
	char *owned[4];           /* strings this struct allocated */
};

/* Parses argv (argv[0] is the subcommand). Returns 0, 1 when --help was printed, or
 * -EINVAL with pv_errmsg() saying what is wrong (exit 2). */
int opts_parse(struct run_opts *o, int argc, char **argv);
void opts_free(struct run_opts *o);
void opts_usage(const char *cmd, FILE *f);

/* Splits "a,b,c" into a malloc'd NULL-terminated array (one allocation). */
char **opts_split_list(const char *s);

#endif
