/* fuzz_frame.c — libFuzzer harness for the host–agent frame decoder (agent/proto.c).
 * Built and run by tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined);
 * the same target runs as a randomized test in tests/unit/test_proto.c. */
#include <errno.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return pv_fuzz_frame(data, size);
}
