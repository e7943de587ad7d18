#!/usr/bin/env bash
# demo/run.sh (make demo): serve demo/www over HTTPS on port 8443 with
# python3 -m http.server under Atlas TLS, with a self-signed certificate.
set -euo pipefail
cd "$(dirname "$0")"
port=${ATLAS_DEMO_PORT:-8443}

if [ ! -s cert.pem ] || [ ! -s key.pem ]; then
	echo "atlas demo: making a self-signed certificate for localhost in demo/cert.pem"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		-keyout key.pem -out cert.pem 2>/dev/null
	chmod 600 key.pem
fi

cat <<MSG

atlas demo: serving $(pwd)/www at https://localhost:$port/ (Ctrl-C stops it)
Try it from another terminal:

    curl --cacert $(pwd)/cert.pem https://localhost:$port/

MSG
cd www
exec ../../atlas-preload.sh --cert ../cert.pem --key ../key.pem --ports "$port" --log-level info \
	-- python3 -m http.server "$port"
