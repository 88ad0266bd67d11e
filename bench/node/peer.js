'use strict';
// The npm peer of `notifier bench`: the `web-push` package sending one campaign's messages over HTTPS.
//
// Configured as a publisher's team would run it for a campaign: one keep-alive https.Agent shared by every
// request (passed through web-push's own `agent` option), `--lanes` requests in flight, the VAPID details
// given per call so web-push signs its JWT per message (it has no cache; that is part of what it costs).
// The simulator's self-signed CA is trusted through NODE_EXTRA_CA_CERTS, set by the parent.
//
// Like the Python baselines (bench/baselines.py), each process loads its inputs, waits for the common start
// time `--at`, sends to its own slice of the subscriptions (`--offset` of `--procs`) until `--limit` messages
// or `--seconds` have passed, and prints one JSON line: ok, errors, started, finished, cpu_s, first_error.

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const webpush = require('web-push');

function parseArgs(argv) {
  const args = { offset: 0, procs: 1, lanes: 256 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!['inputs', 'limit', 'seconds', 'at', 'offset', 'procs', 'lanes'].includes(name)) {
      throw new Error(`unknown option ${argv[i]}`);
    }
    args[name] = name === 'inputs' ? argv[i + 1] : Number(argv[i + 1]);
  }
  for (const required of ['inputs', 'limit', 'seconds', 'at']) {
    if (args[required] === undefined || Number.isNaN(args[required])) {
      throw new Error(`--${required} is required`);
    }
  }
  return args;
}

// The bench's VAPID key is a PEM file (the one notifier's workers use); web-push takes raw base64url keys.
function vapidFromPem(path, subject) {
  const jwk = crypto.createPrivateKey(fs.readFileSync(path)).export({ format: 'jwk' });
  const publicKey = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x, 'base64url'),
    Buffer.from(jwk.y, 'base64url'),
  ]).toString('base64url');
  return { subject, publicKey, privateKey: jwk.d };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const inputs = JSON.parse(fs.readFileSync(args.inputs, 'utf8'));
  const vapidDetails = vapidFromPem(inputs.vapid_key, inputs.subject);
  let subs = inputs.subscriptions.filter((_, i) => i % args.procs === args.offset);
  if (subs.length === 0) subs = inputs.subscriptions;
  const limit = Math.max(1, Math.floor(args.limit / args.procs));
  const payload = Buffer.from(inputs.payload, 'utf8');
  // HTTP/1.1: one connection per request in flight, kept alive and reused (Node's https has no HTTP/2).
  const agent = new https.Agent({ keepAlive: true, maxSockets: args.lanes });
  const options = { vapidDetails, TTL: 3600, agent };

  const delay = args.at * 1000 - Date.now();
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  const cpuAtStart = process.cpuUsage();
  const started = Date.now() / 1000;
  const deadline = started + args.seconds;
  let next = 0;
  let ok = 0;
  let errors = 0;
  let firstError = null;

  async function lane() {
    while (next < limit) {
      if (Date.now() / 1000 > deadline) return;
      const sub = subs[next % subs.length];
      next += 1;
      try {
        await webpush.sendNotification(sub, payload, options);
        ok += 1;
      } catch (err) {
        errors += 1;
        if (firstError === null) firstError = String(err && (err.statusCode || err.message || err));
      }
    }
  }

  await Promise.all(Array.from({ length: args.lanes }, lane));
  const finished = Date.now() / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  agent.destroy();
  process.stdout.write(
    JSON.stringify({
      ok,
      errors,
      started,
      finished,
      cpu_s: (cpu.user + cpu.system) / 1e6,
      first_error: firstError,
      node: process.version,
      web_push: require('web-push/package.json').version,
    }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
