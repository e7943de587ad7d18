// node files-server.js ROOT PORT [PORT...]: a static file server on node's http
// module, for tests/e2e/40-servers.sh and servers-ktls.sh. Each PORT gets its
// own http.Server on BIND (default 127.0.0.1), with HTTP/1.1 keep-alive; files
// go out with fs.createReadStream piped into the response.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const [root, ...ports] = process.argv.slice(2);
const host = process.env.BIND || '127.0.0.1';

function handler(req, res) {
	const rel = path.normalize(decodeURIComponent(req.url.split('?')[0]));
	const file = path.join(root, rel);
	fs.stat(file, (err, st) => {
		if (err || !st.isFile() || !file.startsWith(root)) {
			res.writeHead(404, { 'Content-Length': 0 });
			return res.end();
		}
		res.writeHead(200, { 'Content-Length': st.size, 'Content-Type': 'application/octet-stream' });
		if (req.method === 'HEAD') return res.end();
		fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
	});
}

for (const port of ports) {
	const server = http.createServer(handler);
	server.keepAliveTimeout = 15000;
	server.listen(Number(port), host, () => console.log(`node listening on ${host}:${port}`));
}
