/*
 * tests/unit/test_units.c — the command line's numbers: durations, sizes,
 * bandwidths, key=value lists; and the wording of their errors.
 */
#include "testutil.h"

#include "cli/cli.h"

static void test_durations(void **state)
{
	(void)state;
	int64_t ns;
	assert_int_equal(cli_parse_duration("t", "1ms", &ns), 0);
	assert_int_equal(ns, 1000000);
	assert_int_equal(cli_parse_duration("t", "2.5s", &ns), 0);
	assert_int_equal(ns, 2500000000LL);
	assert_int_equal(cli_parse_duration("t", "250us", &ns), 0);
	assert_int_equal(ns, 250000);
	assert_int_equal(cli_parse_duration("t", "0", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(cli_parse_duration("t", "17ns", &ns), 0);
	assert_int_equal(ns, 17);
	assert_int_equal(cli_parse_duration("t", "1", &ns), -1);    /* a unit is required */
	assert_int_equal(cli_parse_duration("t", "1min", &ns), -1);
	assert_int_equal(cli_parse_duration("t", "-1ms", &ns), -1);
	assert_int_equal(cli_parse_duration("t", "ms", &ns), -1);
	assert_int_equal(cli_parse_duration("t", "", &ns), -1);
	assert_int_equal(cli_parse_duration("t", "1e30s", &ns), -1);
}

static void test_sizes_and_bandwidths(void **state)
{
	(void)state;
	int64_t b;
	assert_int_equal(cli_parse_bytes("s", "16MiB", &b), 0);
	assert_int_equal(b, 16 << 20);
	assert_int_equal(cli_parse_bytes("s", "4KB", &b), 0);
	assert_int_equal(b, 4000);
	assert_int_equal(cli_parse_bytes("s", "4096", &b), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(cli_parse_bytes("s", "1.5GiB", &b), 0);
	assert_int_equal(b, 3LL << 29);
	assert_int_equal(cli_parse_bytes("s", "12 parsecs", &b), -1);
	double bps;
	assert_int_equal(cli_parse_bandwidth("b", "100GB/s", &bps), 0);
	assert_true(bps == 100e9);
	assert_int_equal(cli_parse_bandwidth("b", "400Gbit/s", &bps), 0);
	assert_true(bps == 50e9);
	assert_int_equal(cli_parse_bandwidth("b", "25GiB/s", &bps), 0);
	assert_true(bps == 25.0 * 1073741824.0);
	assert_int_equal(cli_parse_bandwidth("b", "0", &bps), 0);
	assert_true(bps == 0);
	assert_int_equal(cli_parse_bandwidth("b", "100GB", &bps), -1);
	assert_int_equal(cli_parse_bandwidth("b", "fast", &bps), -1);
	long v;
	assert_int_equal(cli_parse_int("n", "12", 1, 20, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(cli_parse_int("n", "21", 1, 20, &v), -1);
	assert_int_equal(cli_parse_int("n", "3x", 1, 20, &v), -1);
}

static int collect(void *ctx, const char *k, const char *v)
{
	char *out = ctx;
	strcat(out, k);
	strcat(out, "=");
	strcat(out, v);
	strcat(out, ";");
	return 0;
}

static void test_kv_lists(void **state)
{
	(void)state;
	char list[] = "F=1ms,B=2ms,FB=3ms", out[128] = "";
	assert_int_equal(cli_each_kv("--cost", list, collect, out), 0);
	assert_string_equal(out, "F=1ms;B=2ms;FB=3ms;");
	char bad[] = "F=1ms,B";
	out[0] = '\0';
	assert_int_equal(cli_each_kv("--cost", bad, collect, out), -1);
	char buf[32];
	cli_fmt_ns(6000000, 66000000, buf, sizeof buf);
	assert_string_equal(buf, "6.000 ms");
	cli_fmt_ns(1500, 1500, buf, sizeof buf);
	assert_string_equal(buf, "1500 ns");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes_and_bandwidths),
		cmocka_unit_test(test_kv_lists),
	};
	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
