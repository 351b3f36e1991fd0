// node: N concurrent http.get of URL, each body must contain TOKEN, timed
// against one.   node http_get.js URL TOKEN N
// Output as net_echo.js. No keep-alive: every request is a new connect.
'use strict';
const http = require('http');
const [url, token, n] = [process.argv[2], process.argv[3], +process.argv[4]];
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function one(i) {
  return new Promise((resolve, reject) => {
    http.get(`${url}?i=${i}`, { agent }, (r) => {
      let d = '';
      r.setEncoding('utf8');
      r.on('data', (c) => { d += c; });
      r.on('end', () => {
        if (r.statusCode === 200 && d.includes(token)) resolve();
        else reject(new Error(`status ${r.statusCode}, body ${JSON.stringify(d.slice(0, 80))}`));
      });
    }).on('error', reject);
  });
}

async function main() {
  await one('warm-up');
  let t = process.hrtime.bigint();
  await one('single');
  const oneMs = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  const allMs = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(`one_ms=${oneMs.toFixed(0)} all_ms=${allMs.toFixed(0)} n=${n}`);
  console.log(`ok ${n} pages`);
}
setTimeout(() => { console.error('timeout'); process.exit(1); }, 25000).unref();
main().catch((e) => { console.error('node:', e.message); process.exit(1); });
