/* fuzz_main.c — the libFuzzer harness every target shares: built once per target
 * by the Makefile (`make fuzz-build`) with -DFUZZ_HEADER='"tests/fuzz/fuzz_T.h"'
 * -DFUZZ_FN=pv_fuzz_T. The same headers run in the corpus replay
 * (tests/unit/test_fuzz_corpora.c). tests/fuzz/run.sh runs them. */
#include <stddef.h>
#include <stdint.h>

#include FUZZ_HEADER

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return FUZZ_FN(data, size);
}
