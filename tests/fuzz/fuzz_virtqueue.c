/* fuzz_virtqueue.c — libFuzzer harness for the split-virtqueue parser
 * (devices/virtqueue.c). Built and run by tests/fuzz/run_virtqueue.sh; the same
 * target replays tests/fuzz/virtqueue_corpus/ in tests/unit/test_virtqueue.c. */
#include "tests/fuzz/fuzz_virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return pv_fuzz_virtqueue(data, size);
}
