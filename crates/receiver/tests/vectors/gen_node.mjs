#!/usr/bin/env node
// Step 2 of 2: add stripe-node's verdicts to crates/receiver/tests/vectors.json
// (written by gen_python.py) and settle the `expected` verdict of each case.
//
// Run from anywhere after gen_python.py, with compat/node installed (`npm ci
// --prefix compat/node`, which scripts/test.sh does):
//
//     node crates/receiver/tests/vectors/gen_node.mjs
//
// Each case is verified with
// `stripe.webhooks.signature.verifyHeader(payload, header, secret, tolerance,
// undefined, receivedAt)`, the payload as a Buffer (a raw body) and receivedAt
// = now * 1000. `expected` is the SDKs' common verdict; where they disagree the
// case must name the SDK we follow in `follow`, and `expected` is that SDK's
// verdict. A disagreement without `follow` (or a `follow` without a
// disagreement) stops the script, so a changed SDK is noticed.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const require = createRequire(path.join(root, 'compat/node/package.json'));
const Stripe = require('stripe');
const stripeVersion = JSON.parse(
  fs.readFileSync(path.join(root, 'compat/node/node_modules/stripe/package.json'), 'utf8'),
).version;
const stripe = new Stripe('sk_test_vectors_unused');

const KINDS = [
  ['No webhook payload was provided', 'missing_payload'],
  ['No stripe-signature header value was provided', 'missing_header'],
  ['No webhook secret value was provided', 'missing_secret'],
  ['Unable to extract timestamp and signatures from header', 'malformed_header'],
  ['No signatures found with expected scheme', 'no_signatures'],
  ['No signatures found matching the expected signature', 'signature_mismatch'],
  ['Timestamp outside the tolerance zone', 'timestamp_outside_tolerance'],
];

function verdict(c) {
  try {
    stripe.webhooks.signature.verifyHeader(
      Buffer.from(c.payload, 'utf8'),
      c.header,
      c.secret,
      c.tolerance,
      undefined,
      c.now * 1000,
    );
    return { ok: true };
  } catch (e) {
    if (e && e.type === 'StripeSignatureVerificationError') {
      const hit = KINDS.find(([prefix]) => e.message.startsWith(prefix));
      if (hit) return { ok: false, kind: hit[1] };
    }
    return { ok: false, kind: `other: ${e && e.name}: ${e && e.message}` };
  }
}

const same = (a, b) => a.ok === b.ok && a.kind === b.kind;

const file = path.join(here, '..', 'vectors.json');
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
doc.node_sdk = `stripe-node ${stripeVersion}`;
let problems = 0;
for (const v of doc.vectors) {
  v.node = verdict(v);
  const agree = same(v.python, v.node);
  if (agree && v.follow) {
    console.error(`${v.name}: the SDKs agree now; drop "follow" in gen_python.py`);
    problems++;
  } else if (!agree && !v.follow) {
    console.error(`${v.name}: the SDKs disagree (python ${JSON.stringify(v.python)}, node ${JSON.stringify(v.node)}); set "follow" in gen_python.py`);
    problems++;
  }
  v.expected = agree ? v.python : v[v.follow];
  console.error(`${v.name.padEnd(32)} node: ${JSON.stringify(v.node)}${agree ? '' : `  (disagree; following ${v.follow})`}`);
}
// Keep the SDK names next to each other at the top.
const { about, python_sdk, node_sdk, vectors } = doc;
fs.writeFileSync(file, JSON.stringify({ about, python_sdk, node_sdk, vectors }, null, 2) + '\n');
if (problems) process.exit(1);
