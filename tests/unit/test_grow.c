/*
 * tests/unit/test_grow.c — pt_grow, the growable array the whole tree appends
 * to: doubling from 16, room for a jump past the next doubling, and refusing
 * a size that would overflow without touching the array.
 */
#include "testutil.h"

#include "libtrace/grow.h"

static void test_grow_doubles(void **state)
{
	(void)state;
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 1000; i++) {
		if (n == cap)
			assert_int_equal(pt_grow(&v, &cap, n + 1, sizeof *v), 0);
		v[n++] = i;
	}
	assert_int_equal(cap, 1024);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	/* enough room already: nothing moves */
	int64_t *same = v;
	assert_int_equal(pt_grow(&v, &cap, 1024, sizeof *v), 0);
	assert_ptr_equal(v, same);
	/* a jump past the next doubling: doubled until it fits */
	assert_int_equal(pt_grow(&v, &cap, 5000, sizeof *v), 0);
	assert_int_equal(cap, 8192);
	assert_int_equal(v[999], 999);
	free(v);

	char *s = NULL;
	size_t scap = 0;
	assert_int_equal(pt_grow(&s, &scap, 3, 1), 0);
	assert_int_equal(scap, 16);
	free(s);
}

static void test_grow_overflow(void **state)
{
	(void)state;
	int64_t *v = NULL;
	size_t cap = 0;
	assert_int_equal(pt_grow(&v, &cap, 4, sizeof *v), 0);
	int64_t *was = v;
	size_t wascap = cap;
	assert_int_equal(pt_grow(&v, &cap, SIZE_MAX / 4, sizeof *v), PT_ENOMEM);
	assert_ptr_equal(v, was);
	assert_int_equal(cap, wascap);
	assert_int_equal(pt_grow(&v, &cap, SIZE_MAX, 1), PT_ENOMEM); /* over PTRDIFF_MAX bytes */
	assert_ptr_equal(v, was);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_doubles),
		cmocka_unit_test(test_grow_overflow),
	};
	return cmocka_run_group_tests_name("grow", tests, NULL, NULL);
}
