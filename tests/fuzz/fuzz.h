/*
 * What every libFuzzer target of tests/fuzz/ shares: an invariant check that
 * aborts (so the fuzzer reports a logic bug as it would a crash, with the
 * input that caused it), and a reader that turns the fuzzer's bytes into the
 * decisions a target makes (sizes, errors, which call comes next).
 *
 * A target includes it once; every function here is static.
 */
#ifndef ATLAS_FUZZ_H
#define ATLAS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition and its place when an invariant does not hold. */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The fuzzer's input, consumed from the front. Past its end every read gives zeros. */
struct fuzz_input {
	const uint8_t *data;
	size_t size;
	size_t off;
};

static inline struct fuzz_input fuzz_input(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { .data = data, .size = size, .off = 0 };

	return in;
}

static inline size_t fuzz_left(const struct fuzz_input *in)
{
	return in->size - in->off;
}

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	return in->off < in->size ? in->data[in->off++] : 0;
}

static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint64_t fuzz_u64(struct fuzz_input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

/* Up to n bytes of the input (fewer at its end); *got says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_input *in, size_t n, size_t *got)
{
	const uint8_t *p = in->data + in->off;

	*got = n < fuzz_left(in) ? n : fuzz_left(in);
	in->off += *got;
	return p;
}

/* True when every byte of the string is printable ASCII: a log line stays one readable line. */
static inline int fuzz_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

#endif
