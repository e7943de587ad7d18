/*
 * Fuzz target: the configuration (shim/config.c), through its lookup seam.
 *
 * Input: one byte of flags (bit i: variable i is unset), one byte that sizes
 * the error buffer, then the values of ATLAS_PORTS, ATLAS_CERT, ATLAS_KEY,
 * ATLAS_KTLS, ATLAS_HANDSHAKE_TIMEOUT_MS, ATLAS_LOG_LEVEL, SSLKEYLOGFILE and
 * ATLAS_KEY_MODE_WARNED, separated by NUL bytes (missing ones are unset). atlas_config_load reads them through the
 * lookup function; each per-variable parser is then run on its value alone.
 *
 * Invariants: the port set equals the one a separate reference parser
 * reads from the list (all or nothing); a failure leaves one printable
 * sentence, never more than the buffer holds, that names its variable; ports
 * are kept when a later variable is wrong; accepted values are in range; the
 * optional variables never refuse anything (a key log path too long is unset).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../include/atlas.h"
#include "config.h"
#include "fuzz.h"
#include "stub_init.h"

enum { V_PORTS, V_CERT, V_KEY, V_KTLS, V_TIMEOUT, V_LOG, V_KEYLOG, V_WARNED, V_COUNT };

static const char *const var_names[V_COUNT] = {
	[V_PORTS] = ATLAS_ENV_PORTS,
	[V_CERT] = ATLAS_ENV_CERT,
	[V_KEY] = ATLAS_ENV_KEY,
	[V_KTLS] = ATLAS_ENV_KTLS,
	[V_TIMEOUT] = ATLAS_ENV_HANDSHAKE_TIMEOUT_MS,
	[V_LOG] = ATLAS_ENV_LOG_LEVEL,
	[V_KEYLOG] = ATLAS_ENV_KEYLOG,
	[V_WARNED] = ATLAS_ENV_KEY_MODE_WARNED,
};

/* The environment of this run: NULL for an unset variable. */
static const char *env[V_COUNT];
static unsigned lookups;

static const char *fake_lookup(const char *name)
{
	lookups++;
	for (int i = 0; i < V_COUNT; i++)
		if (strcmp(name, var_names[i]) == 0)
			return env[i];
	FUZZ_CHECK(!"atlas_config_load looked up a variable it does not know");
	return NULL;
}

/* The port list rule, written again from the README: "1..65535, comma-separated". */
static bool ref_ports(const char *text, uint64_t bits[1024], unsigned *n)
{
	memset(bits, 0, 1024 * sizeof(bits[0]));
	*n = 0;
	if (text == NULL || *text == '\0')
		return false;
	for (const char *p = text;;) {
		uint64_t v = 0;
		size_t len = 0;

		/* Digits only, at most ten of them (leading zeros allowed), no sign or space. */
		for (; p[len] >= '0' && p[len] <= '9'; len++)
			v = v * 10 + (uint64_t)(p[len] - '0');
		if (len == 0 || len > 10 || (p[len] != ',' && p[len] != '\0') || v == 0 ||
		    v > 65535) {
			memset(bits, 0, 1024 * sizeof(bits[0]));
			*n = 0;
			return false;
		}
		if (!(bits[v / 64] >> (v % 64) & 1)) {
			bits[v / 64] |= UINT64_C(1) << (v % 64);
			++*n;
		}
		if (p[len] == '\0')
			return true;
		p += len + 1;
	}
}

/* A failure's message: within the buffer, terminated, printable, naming the variable. */
static void check_error(const char *err, size_t errlen, const char *var)
{
	FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
	FUZZ_CHECK(fuzz_printable(err));
	/* A buffer big enough for the variable's name must name it. */
	if (errlen > strlen(var))
		FUZZ_CHECK(strncmp(err, var, strlen(var)) == 0);
}

static bool in(const char *text, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(text, names[i]) == 0)
			return true;
	return false;
}

static void check_parsers(char *err, size_t errlen)
{
	static const char *const ktls[] = { "auto", "off", "require" };
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	const char *t;
	enum atlas_ktls_mode mode = (enum atlas_ktls_mode)99;
	enum atlas_log_level level = (enum atlas_log_level)99;
	unsigned ms = 0;

	t = env[V_KTLS];
	if (atlas_config_parse_ktls(t, &mode, err, errlen) == 0) {
		FUZZ_CHECK(t == NULL || *t == '\0' || in(t, ktls, 3));
		FUZZ_CHECK(mode <= ATLAS_KTLS_REQUIRE);
		FUZZ_CHECK(strcmp(atlas_config_ktls_name(mode), t && *t ? t : "auto") == 0);
	} else {
		FUZZ_CHECK(t != NULL && *t != '\0' && !in(t, ktls, 3));
		check_error(err, errlen, ATLAS_ENV_KTLS);
	}

	t = env[V_LOG];
	if (atlas_config_parse_log_level(t, &level, err, errlen) == 0) {
		FUZZ_CHECK(t == NULL || *t == '\0' || in(t, levels, 4));
		FUZZ_CHECK(level <= ATLAS_LOG_DEBUG);
	} else {
		FUZZ_CHECK(t != NULL && *t != '\0' && !in(t, levels, 4));
		check_error(err, errlen, ATLAS_ENV_LOG_LEVEL);
	}

	t = env[V_TIMEOUT];
	if (atlas_config_parse_timeout(t, &ms, err, errlen) == 0) {
		char again[16];

		FUZZ_CHECK(ms >= 1 && ms <= 3600000);
		if (t == NULL || *t == '\0') {
			FUZZ_CHECK(ms == ATLAS_DEFAULT_HANDSHAKE_TIMEOUT_MS);
		} else {
			/* The digits said ms: only leading zeros may differ. */
			FUZZ_CHECK(strspn(t, "0123456789") == strlen(t));
			snprintf(again, sizeof(again), "%u", ms);
			FUZZ_CHECK(strcmp(t + strspn(t, "0"), again) == 0);
		}
	} else {
		check_error(err, errlen, ATLAS_ENV_HANDSHAKE_TIMEOUT_MS);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = fuzz_input(data, size);
	uint8_t unset = fuzz_u8(&in);
	/* An exact-size heap buffer: ASan sees a byte written past it. */
	size_t errlen = (size_t)fuzz_u8(&in) % 200 + 1;
	char *err = malloc(errlen);
	char *text = malloc(fuzz_left(&in) + 1);
	struct atlas_config *cfg = malloc(sizeof(*cfg));
	uint64_t bits[1024];
	unsigned nports;
	bool ports_ok;
	int rc;

	FUZZ_CHECK(err != NULL && text != NULL && cfg != NULL);
	/* Split the rest at NUL bytes: one C string per variable, in order. */
	memcpy(text, in.data + in.off, fuzz_left(&in));
	text[fuzz_left(&in)] = '\0';
	for (int i = 0; i < V_COUNT; i++)
		env[i] = NULL;
	for (size_t off = 0, i = 0; i < V_COUNT && off <= fuzz_left(&in); i++) {
		env[i] = unset >> i & 1 ? NULL : text + off;
		off += strlen(text + off) + 1;
	}

	memset(cfg, 0xa5, sizeof(*cfg));
	memset(err, 0, errlen);
	lookups = 0;
	rc = atlas_config_load(cfg, fake_lookup, err, errlen);
	FUZZ_CHECK(rc == 0 || rc == -1);

	/* Ports first, all or nothing, kept whatever comes after. */
	ports_ok = ref_ports(env[V_PORTS], bits, &nports);
	FUZZ_CHECK(memcmp(cfg->port_bits, bits, sizeof(cfg->port_bits)) == 0);
	FUZZ_CHECK(cfg->nports == nports);
	FUZZ_CHECK(ports_ok == (nports > 0));
	if (env[V_PORTS] != NULL)
		FUZZ_CHECK(nports <= strlen(env[V_PORTS]) / 2 + 1);
	for (unsigned p = 0; p < 65536; p += 4099)
		FUZZ_CHECK(atlas_config_port_is_tls(cfg, (uint16_t)p) ==
			   (bits[p / 64] >> (p % 64) & 1));

	if (rc == 0) {
		FUZZ_CHECK(ports_ok);
		FUZZ_CHECK(env[V_CERT] != NULL && strcmp(cfg->cert, env[V_CERT]) == 0);
		FUZZ_CHECK(env[V_KEY] != NULL && strcmp(cfg->key, env[V_KEY]) == 0);
		FUZZ_CHECK(cfg->ktls <= ATLAS_KTLS_REQUIRE);
		FUZZ_CHECK(cfg->log_level <= ATLAS_LOG_DEBUG);
		FUZZ_CHECK(cfg->handshake_timeout_ms >= 1 && cfg->handshake_timeout_ms <= 3600000);
		FUZZ_CHECK(lookups == V_COUNT);
		if (env[V_KEYLOG] != NULL && strlen(env[V_KEYLOG]) < sizeof(cfg->keylog))
			FUZZ_CHECK(strcmp(cfg->keylog, env[V_KEYLOG]) == 0);
		else
			FUZZ_CHECK(cfg->keylog[0] == '\0');
		FUZZ_CHECK(cfg->key_mode_warned ==
			   (env[V_WARNED] != NULL && strcmp(env[V_WARNED], "1") == 0));
	} else {
		FUZZ_CHECK(errlen == 1 || err[0] != '\0');
		check_error(err, errlen, "ATLAS_");
		if (!ports_ok)
			check_error(err, errlen, ATLAS_ENV_PORTS);
	}

	/* Each parser on its own, as the wrapper's rules are checked against them. */
	memset(err, 0, errlen);
	if (atlas_config_parse_ports(cfg, env[V_PORTS], err, errlen) < 0)
		check_error(err, errlen, ATLAS_ENV_PORTS);
	FUZZ_CHECK(memcmp(cfg->port_bits, bits, sizeof(cfg->port_bits)) == 0);
	check_parsers(err, errlen);

	free(cfg);
	free(text);
	free(err);
	return 0;
}
