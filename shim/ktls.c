#define _GNU_SOURCE
#include "ktls.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "real.h"

#define ULP_LIST "/proc/sys/net/ipv4/tcp_available_ulp"

bool atlas_ktls_ulp_available(void)
{
	char buf[256];
	ssize_t n;
	int fd = open(ULP_LIST, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = atlas_real.read(fd, buf, sizeof(buf) - 1);
	atlas_real.close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* A space-separated list, e.g. "mptcp tls". */
	for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, "tls") == 0)
			return true;
	return false;
}

const char *atlas_ktls_path_reason(enum atlas_ktls_mode mode)
{
	if (mode == ATLAS_KTLS_OFF)
		return "userspace (ATLAS_KTLS=off)";
	if (!atlas_ktls_ulp_available())
		return "userspace (the kernel has no tls ULP)";
	return "userspace (kernel offload is not implemented in this build)";
}
