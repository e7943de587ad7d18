/*
 * atlas-check: what kernel TLS can do on this machine, for
 * `atlas-preload.sh --check`. A program of its own (not part of the library):
 * it probes the kernel the way Atlas will use it, on a loopback connection
 * with a dummy key, and says what ATLAS_KTLS=auto will do.
 */
#define _GNU_SOURCE
#include <linux/tls.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ktls.h"
#include "real.h"

/* Is a tls module on disk for the running kernel, for modprobe to load? */
static bool module_on_disk(void)
{
	static const char *const suffixes[] = { "", ".xz", ".zst", ".gz" };
	struct utsname u;
	char path[512];

	if (uname(&u) < 0)
		return false;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "/lib/modules/%s/kernel/net/tls/tls.ko%s", u.release,
			 suffixes[i]);
		if (access(path, R_OK) == 0)
			return true;
	}
	return false;
}

int main(void)
{
	static const struct {
		unsigned short cipher;
		const char *name;
	} ciphers[] = {
		{ TLS_CIPHER_AES_GCM_128, "AES-128-GCM" },
		{ TLS_CIPHER_AES_GCM_256, "AES-256-GCM" },
		{ TLS_CIPHER_CHACHA20_POLY1305, "ChaCha20-Poly1305" },
	};
	static const struct {
		unsigned short version;
		const char *name;
	} versions[] = { { TLS_1_2_VERSION, "TLS 1.2" }, { TLS_1_3_VERSION, "TLS 1.3" } };
	struct utsname u;
	int full = 0, total = 0;

	atlas_real_init();
	uname(&u);
	printf("kernel %s\n", u.release);
	if (!atlas_ktls_ulp_available()) {
		printf("tls ULP: not available (/proc/sys/net/ipv4/tcp_available_ulp has no "
		       "\"tls\")\n");
		if (module_on_disk())
			printf("         the tls module is installed: `modprobe tls` (as root) "
			       "loads it\n");
		else
			printf("         no tls module for this kernel: it was built without "
			       "CONFIG_TLS\n");
		printf("ATLAS_KTLS=auto: every connection uses the userspace path (OpenSSL)\n");
		printf("ATLAS_KTLS=require: refused at start-up\n");
		return 1;
	}
	printf("tls ULP: available\n");
	printf("offload, tried on a loopback connection (TX = kernel encrypts, RX = kernel "
	       "decrypts):\n");
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		for (size_t c = 0; c < sizeof(ciphers) / sizeof(ciphers[0]); c++) {
			bool tx = atlas_ktls_probe(versions[v].version, ciphers[c].cipher, true);
			bool rx = atlas_ktls_probe(versions[v].version, ciphers[c].cipher, false);

			printf("  %-8s %-18s TX %-3s RX %s\n", versions[v].name, ciphers[c].name,
			       tx ? "yes" : "no", rx ? "yes" : "no");
			full += tx && rx;
			total++;
		}
	}
	printf("ATLAS_KTLS=auto: connections whose cipher has TX and RX above go fully to the "
	       "kernel (%d of %d); the others stay on the userspace path, and the log says why\n",
	       full, total);
	printf("ATLAS_KTLS=require: connections without both directions above are refused\n");
	return 0;
}
