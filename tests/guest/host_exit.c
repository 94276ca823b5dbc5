/* host_exit.c — boots the exit guest under the real VMM and checks that the code it
 * writes to port 0xf4 (taken from "exit=N" on the command line) is the VM's exit. */
#include "tests/guest/host.h"

static struct guest g;

static void exit_with(int code)
{
	char cmdline[32];

	snprintf(cmdline, sizeof(cmdline), "exit=%d", code);
	guest_boot(&g, "exit", cmdline, 64, 1);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	if (g.ex.reason != VM_EXIT_PORT || g.ex.code != code)
		guest_fail(&g, "exit %s code %d, want the exit port with %d",
			   vm_exit_reason_name(g.ex.reason), g.ex.code, code);
	char line[32];
	snprintf(line, sizeof(line), "exit: code %d", code);
	guest_expect(&g, line);
	guest_expect(&g, "PASS: entered with rsi = boot_params (0x7000)");
	guest_expect_not(&g, "FAIL: ");
}

static void test_exit_code_7(void **state) { (void)state; exit_with(7); }
static void test_exit_code_0(void **state) { (void)state; exit_with(0); }
static void test_exit_code_255(void **state) { (void)state; exit_with(255); }

/* docs/test-guest.md shows exit.c as its example: it must be the real file (after
 * the file's header comment), so the example is what this test runs. */
static void test_doc_example_is_the_real_guest(void **state)
{
	char *doc, *src;
	size_t dlen, slen;
	const char *body, *block;

	(void)state;
	if (pv_read_file(PROVIUM_SRCDIR "/docs/test-guest.md", &doc, &dlen) < 0 ||
	    pv_read_file(PROVIUM_SRCDIR "/tests/guest/exit.c", &src, &slen) < 0)
		fail_msg("%s", pv_errmsg());
	body = strstr(src, "#include \"guest.h\"");
	assert_non_null(body);
	block = strstr(doc, "```c\n#include \"guest.h\"");
	if (!block || strncmp(block + 5, body, strlen(body)) != 0 ||
	    strncmp(block + 5 + strlen(body), "```", 3) != 0)
		fail_msg("docs/test-guest.md's example differs from tests/guest/exit.c");
	free(doc);
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_exit_code_7, guest_teardown),
		cmocka_unit_test_teardown(test_exit_code_0, guest_teardown),
		cmocka_unit_test_teardown(test_exit_code_255, guest_teardown),
		cmocka_unit_test(test_doc_example_is_the_real_guest),
	};

	return cmocka_run_group_tests_name("guest_exit", tests, NULL, NULL);
}
