/* config_file_load and config_file_from_args: keys are long option names,
 * applied in file order; unknown keys, flag-only options, sections, bad
 * lines and refused values are errors naming the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config_file.h"

static const struct option opts[] = {
	{ "config", required_argument, NULL, 'F' },
	{ "data-dir", required_argument, NULL, 'd' },
	{ "io-timeout-ms", required_argument, NULL, 'I' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct seen {
	const char *data_dir;
	int io_timeout;
	int napplied;
};

static int apply(void *arg, int c, const char *v, char *err, size_t errsz)
{
	struct seen *s = arg;

	s->napplied++;
	if (c == 'd') {
		s->data_dir = v;
		return 0;
	}
	if (c == 'I' && atoi(v) > 0) {
		s->io_timeout = atoi(v);
		return 0;
	}
	snprintf(err, errsz, "bad value '%s'", v);
	return -1;
}

static char path[64];

static int load(const char *text, struct seen *s)
{
	FILE *f;

	strcpy(path, "/tmp/test_config.XXXXXX");
	f = fdopen(mkstemp(path), "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	memset(s, 0, sizeof *s);
	int r = config_file_load("test", path, true, opts, apply, s);
	unlink(path);
	return r;
}

static void test_values_in_order(void **state)
{
	struct seen s;

	(void)state;
	assert_int_equal(load("# comment\n; comment\n\ndata-dir = /a\n"
			      "  io-timeout-ms=250  \ndata-dir = /b c\n", &s), 0);
	assert_string_equal(s.data_dir, "/b c");  /* the last one wins */
	assert_int_equal(s.io_timeout, 250);
	assert_int_equal(s.napplied, 3);
}

static void test_errors(void **state)
{
	struct seen s;

	(void)state;
	assert_int_equal(load("data-dir = /a\nno-such = 1\n", &s), -1);
	assert_int_equal(load("data-di = /a\n", &s), -1);   /* no abbreviations */
	assert_int_equal(load("help = yes\n", &s), -1);     /* a flag, not a setting */
	assert_int_equal(load("[triplexd]\ndata-dir = /a\n", &s), -1);
	assert_int_equal(s.napplied, 0);
	assert_int_equal(load("data-dir\n", &s), -1);
	assert_int_equal(load("io-timeout-ms = 0\n", &s), -1);
	assert_int_equal(load("data-dir =\n", &s), -1);
	/* inih would split a long line in two: refused, nothing applied. */
	char text[512] = "data-dir = /";
	memset(text + 12, 'a', 300);
	strcpy(text + 312, "\n");
	assert_int_equal(load(text, &s), -1);
	assert_int_equal(s.napplied, 0);
	memset(text + 12, 'a', 300);
	strcpy(text + 12 + 180, "\n");   /* 192 characters: fine */
	assert_int_equal(load(text, &s), 0);
	assert_int_equal(strlen(s.data_dir), 181);
	/* The first error stops the parse: nothing after it is applied. */
	assert_int_equal(load("io-timeout-ms = x\ndata-dir = /a\n", &s), -1);
	assert_null(s.data_dir);
}

static void test_missing_file(void **state)
{
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(config_file_load("test", "/nonexistent/x.conf", false,
					  opts, apply, &s), 0);
	assert_int_equal(config_file_load("test", "/nonexistent/x.conf", true,
					  opts, apply, &s), -1);
}

static void test_from_args(void **state)
{
	char *a1[] = { "p", "--data-dir", "/x", "--config", "/etc/a.conf", NULL };
	char *a2[] = { "p", "--conf=/b.conf", "-h", NULL };
	char *a3[] = { "p", "--data-dir", "/x", NULL };
	bool hv;

	(void)state;
	assert_string_equal(config_file_from_args(5, a1, opts, 'F', &hv), "/etc/a.conf");
	assert_false(hv);
	assert_string_equal(a1[3], "--config");  /* argv left as it was */
	assert_string_equal(config_file_from_args(3, a2, opts, 'F', &hv), "/b.conf");
	assert_true(hv);
	assert_null(config_file_from_args(3, a3, opts, 'F', &hv));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_in_order),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_from_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
