// node: N concurrent net.connect + echo, timed against one.
//   node net_echo.js HOST PORT N
// Prints "one_ms=A all_ms=B n=N" and "ok N echoes" (see aio_echo.py).
'use strict';
const net = require('net');
const [host, port, n] = [process.argv[2], +process.argv[3], +process.argv[4]];

function one(tag) {
  return new Promise((resolve, reject) => {
    const msg = `node ${tag}\n`;
    let got = '';
    const s = net.connect({ host, port }, () => s.write(msg));
    s.setEncoding('utf8');
    s.on('data', (d) => {
      got += d;
      if (got.length < msg.length) return;
      s.end();
      if (got !== msg) reject(new Error(`echo mismatch ${JSON.stringify(got)}`));
      else resolve();
    });
    s.on('error', reject);
    s.on('end', () => { if (got.length < msg.length) reject(new Error('EOF')); });
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
  console.log(`ok ${n} echoes`);
}
setTimeout(() => { console.error('timeout'); process.exit(1); }, 25000).unref();
main().catch((e) => { console.error('node:', e.message); process.exit(1); });
