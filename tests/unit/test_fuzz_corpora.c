/* test_fuzz_corpora.c — every guest- and agent-facing fuzz target of tests/fuzz/
 * (docs/security.md) replayed on its checked-in corpus plus 300 seeded mutants of
 * it, in the unit tier and under ASan+UBSan in the asan tier: what a fuzzer once
 * found stays fixed even where clang's libFuzzer is missing. (The frame and
 * virtqueue corpora are replayed by test_proto.c and test_virtqueue.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/fuzz/fuzz_agent.h"
#include "tests/fuzz/fuzz_blk.h"
#include "tests/fuzz/fuzz_console.h"
#include "tests/fuzz/fuzz_mmio.h"
#include "tests/fuzz/fuzz_net.h"
#include "tests/fuzz/fuzz_serial.h"
#include "tests/fuzz/fuzz_snapshot.h"
#include "tests/fuzz/fuzz_vsock.h"
#include "tests/unit/fuzz_replay.h"

static void replay(const char *name, fuzz_target_fn fn)
{
	int n = fuzz_replay(name, fn, 300, 20261202);
	if (n < 0)
		fail_msg("tests/fuzz/%s_corpus is missing (run from the repository root)", name);
	print_message("# %s: %d corpus inputs + 300 mutants\n", name, n);
	assert_true(n >= 3);
}

#define REPLAY(name) \
	static void test_##name(void **state) { (void)state; replay(#name, pv_fuzz_##name); }
REPLAY(agent)
REPLAY(blk)
REPLAY(console)
REPLAY(mmio)
REPLAY(net)
REPLAY(serial)
REPLAY(snapshot)
REPLAY(vsock)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent), cmocka_unit_test(test_blk),
		cmocka_unit_test(test_console), cmocka_unit_test(test_mmio),
		cmocka_unit_test(test_net), cmocka_unit_test(test_serial),
		cmocka_unit_test(test_snapshot), cmocka_unit_test(test_vsock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
