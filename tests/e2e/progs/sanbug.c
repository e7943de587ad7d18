/*
 * sanbug MODE: one deliberate bug per MODE, the positive control of
 * tests/e2e/50-sanitizers-unit.sh. The way that scenario runs the unit tests
 * (ASan+UBSan, TSan, valgrind memcheck) must catch each of these, or its
 * "no report" checks would prove nothing.
 *
 *   freed     reads a heap block after free()       (ASan, valgrind)
 *   signed    overflows a signed int                 (UBSan)
 *   race      two threads increment one int unlocked (TSan)
 *   leak      loses the only pointer to a block      (LSan, valgrind)
 *   clean     none of these: every tool stays silent
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int shared_counter;
static void *volatile lost;

static void *bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		shared_counter++;
	return NULL;
}

static int use_after_free(void)
{
	char *p = malloc(16);
	char *volatile q = p; /* the compiler cannot see the bug */
	char c;

	if (p == NULL)
		return 1;
	memset(p, 1, 16);
	free(p);
	c = q[8];
	return c == 1 ? 0 : 3;
}

static int signed_overflow(void)
{
	volatile int big = 0x7fffffff;
	int r = big + 1;

	return r == 0;
}

static int race(void)
{
	pthread_t a, b;

	if (pthread_create(&a, NULL, bump, NULL) != 0 || pthread_create(&b, NULL, bump, NULL) != 0)
		return 1;
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return shared_counter < 0;
}

static int leak(void)
{
	lost = malloc(4096);
	if (lost == NULL)
		return 1;
	memset(lost, 2, 4096);
	lost = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (strcmp(mode, "freed") == 0)
		return use_after_free();
	if (strcmp(mode, "signed") == 0)
		return signed_overflow();
	if (strcmp(mode, "race") == 0)
		return race();
	if (strcmp(mode, "leak") == 0)
		return leak();
	if (strcmp(mode, "clean") == 0)
		return 0;
	fprintf(stderr, "usage: sanbug freed|signed|race|leak|clean\n");
	return 2;
}
