/*
 * Unit tests for shim/config.c: every ATLAS_* variable, good and bad values,
 * through the parsers and through atlas_config_load with a fake environment.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "../../include/atlas.h"
#include "config.h"
#include "stub_init.h"

/* The fake environment: a small table that fake_lookup() reads, NULL = unset. */
struct env_entry {
	const char *name;
	const char *value;
};

static struct env_entry env[] = {
	{ ATLAS_ENV_PORTS, NULL },
	{ ATLAS_ENV_CERT, NULL },
	{ ATLAS_ENV_KEY, NULL },
	{ ATLAS_ENV_KTLS, NULL },
	{ ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, NULL },
	{ ATLAS_ENV_LOG_LEVEL, NULL },
	{ ATLAS_ENV_KEYLOG, NULL },
	{ ATLAS_ENV_KEY_MODE_WARNED, NULL },
};

static const char *fake_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		if (strcmp(env[i].name, name) == 0)
			return env[i].value;
	return NULL;
}

static void set_env(const char *name, const char *value)
{
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
		if (strcmp(env[i].name, name) == 0) {
			env[i].value = value;
			return;
		}
	}
	fail_msg("set_env: %s is not in the fake environment", name);
}

/* Big (two PATH_MAX paths): static rather than on the stack. */
static struct atlas_config cfg;
static char err[512];

/* Each test starts from a minimal valid environment and a dirty cfg/err. */
static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		env[i].value = NULL;
	set_env(ATLAS_ENV_PORTS, "8443");
	set_env(ATLAS_ENV_CERT, "/etc/atlas/cert.pem");
	set_env(ATLAS_ENV_KEY, "/etc/atlas/key.pem");
	memset(&cfg, 0xa5, sizeof(cfg));
	memset(err, 0, sizeof(err));
	return 0;
}

static int load(void)
{
	return atlas_config_load(&cfg, fake_lookup, err, sizeof(err));
}

/* The error is one readable sentence that names the variable. */
static void assert_err_names(const char *var)
{
	if (strstr(err, var) == NULL)
		fail_msg("error text \"%s\" does not name %s", err, var);
	for (const char *p = err; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			fail_msg("error text \"%s\" holds byte 0x%02x at %zu", err,
				 (unsigned char)*p, (size_t)(p - err));
}

static unsigned count_port_bits(const struct atlas_config *c)
{
	unsigned n = 0;

	for (unsigned p = 0; p < 65536; p++)
		n += atlas_config_port_is_tls(c, (uint16_t)p);
	return n;
}

/* A bad ATLAS_PORTS value: -1, the variable named, and the value is not a port. */
static void assert_ports_rejected(const char *text)
{
	int r = atlas_config_parse_ports(&cfg, text, err, sizeof(err));

	if (r != -1)
		fail_msg("ATLAS_PORTS='%s' was accepted (%d ports)", text, cfg.nports);
	assert_err_names(ATLAS_ENV_PORTS);
}

/* ---- ATLAS_PORTS: valid values ---- */

static void ports_single_port_is_tls(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "8443", err, sizeof(err)), 0);
	assert_int_equal(cfg.nports, 1);
	assert_true(atlas_config_port_is_tls(&cfg, 8443));
	assert_false(atlas_config_port_is_tls(&cfg, 8442));
	assert_false(atlas_config_port_is_tls(&cfg, 8444));
	assert_int_equal(count_port_bits(&cfg), 1);
}

static void ports_list_sets_every_port(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "443,8443,10443", err, sizeof(err)), 0);
	assert_int_equal(cfg.nports, 3);
	assert_true(atlas_config_port_is_tls(&cfg, 443));
	assert_true(atlas_config_port_is_tls(&cfg, 8443));
	assert_true(atlas_config_port_is_tls(&cfg, 10443));
	assert_int_equal(count_port_bits(&cfg), 3);
}

static void ports_duplicates_count_once(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "443,8443,443,443", err, sizeof(err)), 0);
	assert_int_equal(cfg.nports, 2);
	assert_true(atlas_config_port_is_tls(&cfg, 443));
	assert_true(atlas_config_port_is_tls(&cfg, 8443));
	assert_int_equal(count_port_bits(&cfg), 2);
}

static void ports_1_and_65535_are_valid(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "1,65535", err, sizeof(err)), 0);
	assert_int_equal(cfg.nports, 2);
	assert_true(atlas_config_port_is_tls(&cfg, 1));
	assert_true(atlas_config_port_is_tls(&cfg, 65535));
	assert_false(atlas_config_port_is_tls(&cfg, 0));
	assert_int_equal(count_port_bits(&cfg), 2);
}

static void ports_reparse_forgets_the_previous_list(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "443", err, sizeof(err)), 0);
	assert_int_equal(atlas_config_parse_ports(&cfg, "8443", err, sizeof(err)), 0);
	assert_int_equal(cfg.nports, 1);
	assert_false(atlas_config_port_is_tls(&cfg, 443));
	assert_true(atlas_config_port_is_tls(&cfg, 8443));
}

/* ---- ATLAS_PORTS: bad values ---- */

static void ports_empty_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("");
	/* Nothing after the example that ends the sentence ("e.g. ATLAS_PORTS=8443"). */
	if (strlen(err) < 5 || strcmp(err + strlen(err) - 5, "=8443") != 0)
		fail_msg("error text \"%s\" does not end with its example", err);
}

static void ports_unset_is_rejected(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_PORTS, NULL);
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_PORTS);
	assert_int_equal(cfg.nports, 0);
	assert_int_equal(count_port_bits(&cfg), 0);
}

static void ports_zero_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("0");
}

static void ports_65536_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("65536");
}

static void ports_negative_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("-80");
	assert_ports_rejected("-1");
}

static void ports_plus_sign_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("+80");
}

static void ports_leading_space_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected(" 80");
	assert_ports_rejected("80, 443");
}

static void ports_trailing_space_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("80 ");
	assert_ports_rejected("80 ,443");
}

static void ports_trailing_comma_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("80,");
}

static void ports_leading_comma_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected(",80");
}

static void ports_double_comma_is_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("80,,443");
}

static void ports_letters_are_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("8a");
	assert_ports_rejected("a8");
	assert_ports_rejected("https");
	assert_ports_rejected("0x50");
}

static void ports_eleven_digits_are_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("10000000443");
}

/* 2^64 + 443: a parser without a length bound would wrap around to port 443. */
static void ports_digits_past_2_64_are_rejected(void **state)
{
	(void)state;
	assert_ports_rejected("18446744073709552059");
	assert_ports_rejected("000000000000000000000000000000000000000443");
}

/* The error quotes the offending item, not the whole list. */
static void ports_error_quotes_the_bad_item(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "443,84x3,8443", err, sizeof(err)), -1);
	assert_err_names(ATLAS_ENV_PORTS);
	assert_non_null(strstr(err, "84x3"));
}

/* config.h: "when the port list itself is wrong, nports is 0" -- no port half-configured. */
static void ports_bad_item_after_good_ones_leaves_no_port(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_PORTS, "443,8443x");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_PORTS);
	assert_int_equal(cfg.nports, 0);
	assert_false(atlas_config_port_is_tls(&cfg, 443));
	assert_int_equal(count_port_bits(&cfg), 0);
}

/* config.h: the ports are parsed first and kept when a later variable is wrong. */
static void ports_stay_parsed_when_a_later_variable_is_wrong(void **state)
{
	static const struct env_entry wrong[] = {
		{ ATLAS_ENV_CERT, NULL },	 { ATLAS_ENV_CERT, "" },
		{ ATLAS_ENV_KEY, NULL },	 { ATLAS_ENV_KEY, "" },
		{ ATLAS_ENV_KTLS, "sometimes" }, { ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, "0" },
		{ ATLAS_ENV_LOG_LEVEL, "loud" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		setup(NULL);
		set_env(ATLAS_ENV_PORTS, "443,8443");
		set_env(wrong[i].name, wrong[i].value);
		assert_int_equal(load(), -1);
		assert_err_names(wrong[i].name);
		assert_int_equal(cfg.nports, 2);
		assert_true(atlas_config_port_is_tls(&cfg, 443));
		assert_true(atlas_config_port_is_tls(&cfg, 8443));
		assert_int_equal(count_port_bits(&cfg), 2);
	}
}

/* ---- atlas_config_port_is_tls ---- */

static void port_is_tls_is_exact_across_word_boundaries(void **state)
{
	(void)state;
	assert_int_equal(atlas_config_parse_ports(&cfg, "63,64,65535", err, sizeof(err)), 0);
	assert_false(atlas_config_port_is_tls(&cfg, 0));
	assert_false(atlas_config_port_is_tls(&cfg, 62));
	assert_true(atlas_config_port_is_tls(&cfg, 63));
	assert_true(atlas_config_port_is_tls(&cfg, 64));
	assert_false(atlas_config_port_is_tls(&cfg, 65));
	assert_false(atlas_config_port_is_tls(&cfg, 127));
	assert_false(atlas_config_port_is_tls(&cfg, 128));
	assert_false(atlas_config_port_is_tls(&cfg, 65534));
	assert_true(atlas_config_port_is_tls(&cfg, 65535));
	assert_int_equal(count_port_bits(&cfg), 3);
}

/* ---- ATLAS_KTLS ---- */

static void ktls_auto_off_require_are_parsed(void **state)
{
	enum atlas_ktls_mode m;

	(void)state;
	m = ATLAS_KTLS_REQUIRE;
	assert_int_equal(atlas_config_parse_ktls("auto", &m, err, sizeof(err)), 0);
	assert_int_equal(m, ATLAS_KTLS_AUTO);
	assert_int_equal(atlas_config_parse_ktls("off", &m, err, sizeof(err)), 0);
	assert_int_equal(m, ATLAS_KTLS_OFF);
	assert_int_equal(atlas_config_parse_ktls("require", &m, err, sizeof(err)), 0);
	assert_int_equal(m, ATLAS_KTLS_REQUIRE);
}

static void ktls_unset_means_auto(void **state)
{
	enum atlas_ktls_mode m = ATLAS_KTLS_OFF;

	(void)state;
	assert_int_equal(atlas_config_parse_ktls(NULL, &m, err, sizeof(err)), 0);
	assert_int_equal(m, ATLAS_KTLS_AUTO);
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.ktls, ATLAS_KTLS_AUTO);
}

static void ktls_load_takes_the_variable(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KTLS, "require");
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.ktls, ATLAS_KTLS_REQUIRE);
}

static void ktls_bad_values_are_rejected(void **state)
{
	static const char *const bad[] = {
		"on", "yes", "1", "0", "auto ", " off", "requires", "of"
	};
	enum atlas_ktls_mode m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(err, 0, sizeof(err));
		if (atlas_config_parse_ktls(bad[i], &m, err, sizeof(err)) != -1)
			fail_msg("ATLAS_KTLS='%s' was accepted", bad[i]);
		assert_err_names(ATLAS_ENV_KTLS);
	}
}

static void ktls_is_case_sensitive(void **state)
{
	static const char *const bad[] = { "AUTO", "Off", "REQUIRE" };
	enum atlas_ktls_mode m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(err, 0, sizeof(err));
		if (atlas_config_parse_ktls(bad[i], &m, err, sizeof(err)) != -1)
			fail_msg("ATLAS_KTLS='%s' was accepted", bad[i]);
		assert_err_names(ATLAS_ENV_KTLS);
	}
}

static void ktls_name_matches_the_accepted_spelling(void **state)
{
	(void)state;
	assert_string_equal(atlas_config_ktls_name(ATLAS_KTLS_AUTO), "auto");
	assert_string_equal(atlas_config_ktls_name(ATLAS_KTLS_OFF), "off");
	assert_string_equal(atlas_config_ktls_name(ATLAS_KTLS_REQUIRE), "require");
}

/* ---- ATLAS_HANDSHAKE_TIMEOUT_MS ---- */

static void timeout_unset_defaults_to_10000(void **state)
{
	unsigned ms = 1;

	(void)state;
	assert_int_equal(atlas_config_parse_timeout(NULL, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.handshake_timeout_ms, 10000);
	assert_int_equal(ATLAS_DEFAULT_HANDSHAKE_TIMEOUT_MS, 10000);
}

static void timeout_1_is_the_minimum(void **state)
{
	unsigned ms = 0;

	(void)state;
	assert_int_equal(atlas_config_parse_timeout("1", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 1);
}

static void timeout_3600000_is_the_maximum(void **state)
{
	unsigned ms = 0;

	(void)state;
	assert_int_equal(atlas_config_parse_timeout("3600000", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 3600000);
}

static void timeout_load_takes_the_variable(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, "2500");
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.handshake_timeout_ms, 2500);
}

static void assert_timeout_rejected(const char *text)
{
	unsigned ms = 0;

	memset(err, 0, sizeof(err));
	if (atlas_config_parse_timeout(text, &ms, err, sizeof(err)) != -1)
		fail_msg("ATLAS_HANDSHAKE_TIMEOUT_MS='%s' was accepted as %u", text, ms);
	assert_err_names(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS);
}

static void timeout_0_is_rejected(void **state)
{
	(void)state;
	assert_timeout_rejected("0");
}

static void timeout_3600001_is_rejected(void **state)
{
	(void)state;
	assert_timeout_rejected("3600001");
	assert_timeout_rejected("4294967296");
	assert_timeout_rejected("18446744073709551617");
}

static void timeout_non_numbers_are_rejected(void **state)
{
	(void)state;
	assert_timeout_rejected("abc");
	assert_timeout_rejected("-5");
	assert_timeout_rejected("+5");
	assert_timeout_rejected(" 5");
	assert_timeout_rejected("5 ");
	assert_timeout_rejected("1e3");
}

static void timeout_units_are_rejected(void **state)
{
	(void)state;
	assert_timeout_rejected("10s");
	assert_timeout_rejected("500ms");
}

/* ---- ATLAS_LOG_LEVEL ---- */

static void log_level_names_are_parsed(void **state)
{
	static const struct {
		const char *text;
		enum atlas_log_level level;
	} ok[] = {
		{ "error", ATLAS_LOG_ERROR },
		{ "warn", ATLAS_LOG_WARN },
		{ "info", ATLAS_LOG_INFO },
		{ "debug", ATLAS_LOG_DEBUG },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum atlas_log_level l =
			ok[i].level == ATLAS_LOG_ERROR ? ATLAS_LOG_DEBUG : ATLAS_LOG_ERROR;

		assert_int_equal(atlas_config_parse_log_level(ok[i].text, &l, err, sizeof(err)), 0);
		assert_int_equal(l, ok[i].level);
	}
}

static void log_level_unset_means_warn(void **state)
{
	enum atlas_log_level l = ATLAS_LOG_DEBUG;

	(void)state;
	assert_int_equal(atlas_config_parse_log_level(NULL, &l, err, sizeof(err)), 0);
	assert_int_equal(l, ATLAS_LOG_WARN);
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.log_level, ATLAS_LOG_WARN);
}

static void log_level_load_takes_the_variable(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_LOG_LEVEL, "debug");
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.log_level, ATLAS_LOG_DEBUG);
}

static void log_level_bad_values_are_rejected(void **state)
{
	static const char *const bad[] = { "DEBUG", "Warn", "warning", "verbose", "3", "info " };
	enum atlas_log_level l;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(err, 0, sizeof(err));
		if (atlas_config_parse_log_level(bad[i], &l, err, sizeof(err)) != -1)
			fail_msg("ATLAS_LOG_LEVEL='%s' was accepted", bad[i]);
		assert_err_names(ATLAS_ENV_LOG_LEVEL);
	}
}

/* ---- ATLAS_CERT, ATLAS_KEY ---- */

static void cert_and_key_paths_are_copied(void **state)
{
	(void)state;
	assert_int_equal(load(), 0);
	assert_string_equal(cfg.cert, "/etc/atlas/cert.pem");
	assert_string_equal(cfg.key, "/etc/atlas/key.pem");
}

static void cert_unset_is_rejected(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_CERT, NULL);
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_CERT);
}

static void cert_empty_is_rejected(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_CERT, "");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_CERT);
}

static void key_unset_is_rejected(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KEY, NULL);
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_KEY);
}

static void key_empty_is_rejected(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KEY, "");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_KEY);
}

static void cert_longer_than_path_max_is_rejected(void **state)
{
	static char path[PATH_MAX + 1];

	(void)state;
	memset(path, 'a', PATH_MAX);
	path[0] = '/';
	path[PATH_MAX] = '\0';
	set_env(ATLAS_ENV_CERT, path);
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_CERT);
}

/* ---- atlas_config_load as a whole ---- */

static void load_fills_every_field(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_PORTS, "443,8443");
	set_env(ATLAS_ENV_KTLS, "off");
	set_env(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, "1500");
	set_env(ATLAS_ENV_LOG_LEVEL, "info");
	assert_int_equal(load(), 0);
	assert_int_equal(cfg.nports, 2);
	assert_true(atlas_config_port_is_tls(&cfg, 443));
	assert_true(atlas_config_port_is_tls(&cfg, 8443));
	assert_int_equal(count_port_bits(&cfg), 2);
	assert_string_equal(cfg.cert, "/etc/atlas/cert.pem");
	assert_string_equal(cfg.key, "/etc/atlas/key.pem");
	assert_int_equal(cfg.ktls, ATLAS_KTLS_OFF);
	assert_int_equal(cfg.handshake_timeout_ms, 1500);
	assert_int_equal(cfg.log_level, ATLAS_LOG_INFO);
}

static void load_error_names_only_the_wrong_variable(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, "10s");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS);
	assert_null(strstr(err, ATLAS_ENV_PORTS));
	assert_null(strstr(err, ATLAS_ENV_KTLS));
}

static void load_error_fits_a_small_buffer(void **state)
{
	char small[16];

	(void)state;
	memset(small, 'x', sizeof(small));
	set_env(ATLAS_ENV_KTLS, "a-much-longer-value-than-sixteen-bytes");
	assert_int_equal(atlas_config_load(&cfg, fake_lookup, small, sizeof(small)), -1);
	assert_true(memchr(small, '\0', sizeof(small)) != NULL);
	assert_int_equal(strncmp(small, ATLAS_ENV_KTLS, strlen(ATLAS_ENV_KTLS)), 0);
}

/* Found by tests/fuzz/fuzz_config: a newline in a value split the log line in two. */
static void errors_quote_unprintable_bytes_as_question_marks(void **state)
{
	(void)state;
	assert_ports_rejected("443,84\n43");
	assert_non_null(strstr(err, "'84?43'"));
	set_env(ATLAS_ENV_KTLS, "off\natlas: info: forged");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_KTLS);
	assert_non_null(strstr(err, "'off?atlas: info: forged'"));
	set_env(ATLAS_ENV_KTLS, NULL);
	set_env(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, "10\r\n");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS);
	set_env(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, NULL);
	set_env(ATLAS_ENV_LOG_LEVEL, "warn\x1b[2J\xc3\xa9");
	assert_int_equal(load(), -1);
	assert_err_names(ATLAS_ENV_LOG_LEVEL);
	assert_non_null(strstr(err, "'warn?[2J?"
				    "?'"));
}

static void keylog_unset_means_none(void **state)
{
	(void)state;
	assert_int_equal(load(), 0);
	assert_string_equal(cfg.keylog, "");
	assert_false(cfg.key_mode_warned);
}

static void keylog_empty_means_none(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KEYLOG, "");
	assert_int_equal(load(), 0);
	assert_string_equal(cfg.keylog, "");
}

static void keylog_path_is_taken_when_set(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KEYLOG, "/tmp/keys.log");
	assert_int_equal(load(), 0);
	assert_string_equal(cfg.keylog, "/tmp/keys.log");
}

static void keylog_too_long_is_ignored_and_refuses_nothing(void **state)
{
	static char path[PATH_MAX + 10];

	(void)state;
	memset(path, 'k', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	set_env(ATLAS_ENV_KEYLOG, path);
	assert_int_equal(load(), 0);
	assert_string_equal(cfg.keylog, "");
}

static void key_mode_warned_only_when_1(void **state)
{
	(void)state;
	set_env(ATLAS_ENV_KEY_MODE_WARNED, "1");
	assert_int_equal(load(), 0);
	assert_true(cfg.key_mode_warned);
	set_env(ATLAS_ENV_KEY_MODE_WARNED, "yes");
	assert_int_equal(load(), 0);
	assert_false(cfg.key_mode_warned);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(ports_single_port_is_tls),
		T(ports_list_sets_every_port),
		T(ports_duplicates_count_once),
		T(ports_1_and_65535_are_valid),
		T(ports_reparse_forgets_the_previous_list),
		T(ports_empty_is_rejected),
		T(ports_unset_is_rejected),
		T(ports_zero_is_rejected),
		T(ports_65536_is_rejected),
		T(ports_negative_is_rejected),
		T(ports_plus_sign_is_rejected),
		T(ports_leading_space_is_rejected),
		T(ports_trailing_space_is_rejected),
		T(ports_trailing_comma_is_rejected),
		T(ports_leading_comma_is_rejected),
		T(ports_double_comma_is_rejected),
		T(ports_letters_are_rejected),
		T(ports_eleven_digits_are_rejected),
		T(ports_digits_past_2_64_are_rejected),
		T(ports_error_quotes_the_bad_item),
		T(ports_bad_item_after_good_ones_leaves_no_port),
		T(ports_stay_parsed_when_a_later_variable_is_wrong),
		T(port_is_tls_is_exact_across_word_boundaries),
		T(ktls_auto_off_require_are_parsed),
		T(ktls_unset_means_auto),
		T(ktls_load_takes_the_variable),
		T(ktls_bad_values_are_rejected),
		T(ktls_is_case_sensitive),
		T(ktls_name_matches_the_accepted_spelling),
		T(timeout_unset_defaults_to_10000),
		T(timeout_1_is_the_minimum),
		T(timeout_3600000_is_the_maximum),
		T(timeout_load_takes_the_variable),
		T(timeout_0_is_rejected),
		T(timeout_3600001_is_rejected),
		T(timeout_non_numbers_are_rejected),
		T(timeout_units_are_rejected),
		T(log_level_names_are_parsed),
		T(log_level_unset_means_warn),
		T(log_level_load_takes_the_variable),
		T(log_level_bad_values_are_rejected),
		T(cert_and_key_paths_are_copied),
		T(cert_unset_is_rejected),
		T(cert_empty_is_rejected),
		T(key_unset_is_rejected),
		T(key_empty_is_rejected),
		T(cert_longer_than_path_max_is_rejected),
		T(load_fills_every_field),
		T(load_error_names_only_the_wrong_variable),
		T(load_error_fits_a_small_buffer),
		T(errors_quote_unprintable_bytes_as_question_marks),
		T(keylog_unset_means_none),
		T(keylog_empty_means_none),
		T(keylog_path_is_taken_when_set),
		T(keylog_too_long_is_ignored_and_refuses_nothing),
		T(key_mode_warned_only_when_1),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
