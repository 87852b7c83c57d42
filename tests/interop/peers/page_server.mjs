// Serves a browser peer's page and peer_core.js on 127.0.0.1 (a secure context, as WebRTC pages and getUserMedia
// need); chromium_peer.mjs and firefox_peer.mjs share it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// page: a function returning the page's HTML (read at each request). Resolves once listening.
export async function servePeerPage(page) {
  const server = createServer((req, res) => {
    const [body, type] = req.url === '/' ? [page(), 'text/html']
      : req.url === '/peer_core.js' ? [readFileSync(join(here, 'peer_core.js')), 'text/javascript'] : [null, null];
    res.writeHead(body === null ? 404 : 200, { 'content-type': type ?? 'text/plain', 'cache-control': 'no-store' });
    res.end(body ?? 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
