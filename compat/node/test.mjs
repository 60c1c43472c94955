#!/usr/bin/env node
// Compatibility tests: the official stripe-node SDK against Switchboard.
//
// Configuration (environment):
//   SWITCHBOARD_API_BASE  e.g. http://127.0.0.1:12111 (required)
//   SWITCHBOARD_TEST_KEY  the server's test secret key, sk_test_... (required)
//   SWITCHBOARD_TESTS     optional comma-separated subset of test names to run
//
// Run with `node test.mjs` after `npm ci` (Node 20+). Only Node's built-in
// modules and `stripe` (see package.json) are used. Every test prints PASS or
// FAIL; a failure prints the assertion, the HTTP exchanges the SDK made during
// that test (request and response, API key redacted), the SDK's own
// request/response events and what the local webhook receiver got. The exit
// status is 1 when any test failed (2 for a configuration error).
//
// Start the server with `--retry-schedule fast`, and give the suite a server
// of its own: the pending_webhooks checks assume that every endpoint on it
// answers (endpoints are created per test and deleted afterwards).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { inspect } from 'node:util';

import Stripe from 'stripe';

const API_BASE = (process.env.SWITCHBOARD_API_BASE || '').replace(/\/+$/, '');
const TEST_KEY = process.env.SWITCHBOARD_TEST_KEY || '';

const WEBHOOK_USER_AGENT = 'Stripe/1.0 (+https://stripe.com/docs/webhooks)';
const WEBHOOK_CONTENT_TYPE = 'application/json; charset=utf-8';
const DELIVERY_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 120_000;
// Event types no test ever triggers: endpoints that must not receive
// customer events (and so must not hold pending_webhooks up) listen to these.
const QUIET_EVENTS = ['charge.dispute.closed', 'invoice.paid'];

const { errors } = Stripe;

// ---------------------------------------------------------------------------
// Recording: every HTTP exchange the SDK makes, and the SDK's own events.

const LOG = { exchanges: [], sdkEvents: [] };

function resetLog() {
  LOG.exchanges = [];
  LOG.sdkEvents = [];
}

function redactHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = k.toLowerCase() === 'authorization' ? `${String(v).slice(0, 15)}…(redacted)` : v;
  }
  return out;
}

function text(value, limit = 4000) {
  if (value === undefined || value === null) return '';
  let s = Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  if (s.length > limit) s = `${s.slice(0, limit)}…(${s.length - limit} more chars)`;
  return s;
}

// The SDK's own Node HTTP client, wrapped so that each exchange is logged:
// request line, headers and form body; response status, headers and JSON
// (copied before the SDK decorates error objects with headers).
function recordingHttpClient() {
  const base = Stripe.createNodeHttpClient();
  const client = Object.create(base);
  client.makeRequest = (host, port, path, method, headers, body, protocol, timeout) => {
    const ex = {
      method,
      url: `${protocol}://${host}:${port}${path}`,
      headers: redactHeaders(headers),
      body,
    };
    LOG.exchanges.push(ex);
    return base.makeRequest(host, port, path, method, headers, body, protocol, timeout).then(
      (res) => {
        ex.status = res.getStatusCode();
        ex.responseHeaders = { ...res.getHeaders() };
        const toJSON = res.toJSON.bind(res);
        res.toJSON = () =>
          toJSON().then(
            (json) => {
              ex.responseBody = JSON.parse(JSON.stringify(json));
              return json;
            },
            (err) => {
              ex.error = `reading body: ${err && err.message}`;
              throw err;
            },
          );
        return res;
      },
      (err) => {
        ex.error = String(err && (err.stack || err.message || err));
        throw err;
      },
    );
  };
  return client;
}

const HTTP_CLIENT = recordingHttpClient();

function formatExchanges(exchanges, last = 8) {
  const lines = [];
  const skipped = Math.max(0, exchanges.length - last);
  if (skipped) lines.push(`    (${skipped} earlier exchange(s) omitted)`);
  exchanges.slice(skipped).forEach((ex, i) => {
    lines.push(`    --- exchange ${skipped + i + 1} ---`);
    lines.push(`    > ${ex.method} ${ex.url}`);
    for (const [k, v] of Object.entries(ex.headers)) lines.push(`    > ${k}: ${v}`);
    if (ex.body) lines.push(`    > ${text(ex.body)}`);
    if (ex.status === undefined) {
      lines.push(`    ! ${ex.error || '(no response)'}`);
      return;
    }
    lines.push(`    < HTTP ${ex.status}`);
    for (const [k, v] of Object.entries(ex.responseHeaders)) lines.push(`    < ${k}: ${v}`);
    if (ex.error) lines.push(`    ! ${ex.error}`);
    if (ex.responseBody !== undefined) lines.push(`    < ${text(ex.responseBody).replace(/\n/g, '\n    < ')}`);
  });
  return lines.join('\n');
}

function formatSdkEvents(events, last = 16) {
  const skipped = Math.max(0, events.length - last);
  const lines = skipped ? [`    (${skipped} earlier event(s) omitted)`] : [];
  for (const [name, e] of events.slice(skipped)) {
    const { body, ...rest } = e; // bodies are already in the exchanges
    lines.push(`    ${name}: ${JSON.stringify(rest)}`);
  }
  return lines.join('\n') || '    (none)';
}

// ---------------------------------------------------------------------------
// Webhook receiver: records each POST (path, headers, raw Buffer body) and
// answers 200. Deliveries are recorded before answering, so once Switchboard
// counts a delivery as done the receiver has it.

class Receiver {
  constructor() {
    this.deliveries = [];
    this.waiters = new Set();
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let json = null;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = null;
        }
        this.deliveries.push({
          method: req.method,
          path: req.url,
          headers: { ...req.headers },
          body,
          json: json && typeof json === 'object' ? json : {},
          receivedAt: Date.now(),
        });
        for (const w of [...this.waiters]) w();
        const answer = '{"received": true}';
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
  }

  url(path) {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  matching(predicate) {
    return this.deliveries.filter(predicate);
  }

  // Deliveries matching `predicate` once there are `count` of them; [] on timeout.
  waitFor(predicate, { count = 1, timeout = DELIVERY_TIMEOUT_MS } = {}) {
    return new Promise((resolve) => {
      let timer = null;
      const check = () => {
        const found = this.matching(predicate);
        if (found.length >= count) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        }
        return false;
      };
      if (check()) return;
      this.waiters.add(check);
      timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve([]);
      }, timeout);
    });
  }

  describe(pathPrefix, since = 0) {
    const ds = this.deliveries
      .slice(since)
      .filter((d) => !pathPrefix || d.path.startsWith(pathPrefix));
    if (!ds.length) return `    (receiver got no deliveries${pathPrefix ? ` on ${pathPrefix}` : ''})`;
    const lines = [];
    ds.slice(-6).forEach((d, i) => {
      lines.push(`    --- delivery ${i + 1}: ${d.method} ${d.path} ---`);
      for (const [k, v] of Object.entries(d.headers)) lines.push(`    > ${k}: ${v}`);
      lines.push(`    > ${text(d.body, 1500)}`);
    });
    return lines.join('\n');
  }

  async close() {
    await new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

let RECEIVER = null; // started in main()

// ---------------------------------------------------------------------------
// Assertions

class CheckFailed extends Error {}

function dump(value) {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, (k, v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v), 2);
  } catch {
    return inspect(value, { depth: 6 });
  }
}

function check(cond, message, ...context) {
  if (!cond) {
    const detail = context.map(dump).join('\n');
    throw new CheckFailed(message + (detail ? `\n${detail}` : ''));
  }
}

function checkEq(actual, expected, what, ...context) {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch {
    check(false, `${what}: expected ${dump(expected)}, got ${dump(actual)}`, ...context);
  }
}

function errorSummary(e) {
  return {
    class: e && e.constructor && e.constructor.name,
    type: e && e.type,
    rawType: e && e.rawType,
    statusCode: e && e.statusCode,
    code: e && e.code,
    param: e && e.param,
    decline_code: e && e.decline_code,
    message: e && e.message,
    requestId: e && e.requestId,
  };
}

// Awaits fn(), which must reject with an instance of errorClass; returns the error.
async function expectError(errorClass, fn, what) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    if (e instanceof errorClass) return e;
    throw new CheckFailed(
      `${what}: expected ${errorClass.name}, got ${e && e.constructor && e.constructor.name}: ${e && e.message}\n${dump(errorSummary(e))}`,
    );
  }
  throw new CheckFailed(`${what}: expected ${errorClass.name}, but the call succeeded with:\n${dump(result)}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Calls fn until until(result) holds or the timeout passes; returns the last result.
async function poll(fn, until, timeout = DELIVERY_TIMEOUT_MS, interval = 100) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const result = await fn();
    if (until(result) || Date.now() >= deadline) return result;
    await sleep(interval);
  }
}

// ---------------------------------------------------------------------------
// Helpers

const API = (() => {
  try {
    return new URL(API_BASE);
  } catch {
    return null;
  }
})();

function newClient(key = TEST_KEY) {
  const protocol = API.protocol.replace(/:$/, '');
  const client = new Stripe(key, {
    host: API.hostname,
    port: API.port || (protocol === 'https' ? 443 : 80),
    protocol,
    httpClient: HTTP_CLIENT,
    maxNetworkRetries: 2,
    timeout: 30_000,
    emitEventBodies: true,
  });
  client.on('request', (e) => LOG.sdkEvents.push(['request', e]));
  client.on('response', (e) => LOG.sdkEvents.push(['response', e]));
  return client;
}

function unique(prefix) {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

async function deleteEndpointsQuietly(client, ids) {
  for (const id of ids) {
    try {
      await client.webhookEndpoints.del(id);
    } catch {
      // already gone
    }
  }
}

async function deleteAccountsQuietly(client, ids) {
  for (const id of ids) {
    try {
      await client.accounts.del(id);
    } catch {
      // already gone or disconnected
    }
  }
}

// Every event of `type` whose data.object.id is objectId (auto-paging).
async function findEvents(client, type, objectId, params = {}, options = undefined) {
  const out = [];
  for await (const e of client.events.list({ type, limit: 100, ...params }, options)) {
    if (e.data && e.data.object && e.data.object.id === objectId) out.push(e);
  }
  return out;
}

function deliveryFor(path, { type, objectId, eventId, account } = {}) {
  return (d) => {
    const j = d.json;
    if (d.path !== path) return false;
    if (eventId !== undefined && j.id !== eventId) return false;
    if (type !== undefined && j.type !== type) return false;
    if (account !== undefined && j.account !== account) return false;
    if (objectId !== undefined && !(j.data && j.data.object && j.data.object.id === objectId)) return false;
    return true;
  };
}

// constructEvent on the raw bytes and header; checks the delivery headers.
function verifyDelivery(client, d, secret, what) {
  const sig = d.headers['stripe-signature'];
  check(sig, `${what}: delivery has no Stripe-Signature header`, d.headers);
  let event;
  try {
    event = client.webhooks.constructEvent(d.body, sig, secret);
  } catch (e) {
    throw new CheckFailed(
      `${what}: stripe.webhooks.constructEvent rejected the delivery: ${e.constructor.name}: ${e.message}\n` +
        `  Stripe-Signature: ${sig}\n  body: ${text(d.body)}`,
    );
  }
  checkEq(d.headers['content-type'], WEBHOOK_CONTENT_TYPE, `${what}: Content-Type`, d.headers);
  checkEq(d.headers['user-agent'], WEBHOOK_USER_AGENT, `${what}: User-Agent`, d.headers);
  checkEq(d.method, 'POST', `${what}: method`);
  return event;
}

// Waits for one delivery matching the filter on `path`, verifies it; returns the event.
async function receiveVerified(client, path, filter, secret, what) {
  const found = await RECEIVER.waitFor(deliveryFor(path, filter));
  check(
    found.length,
    `${what}: no delivery matching ${JSON.stringify(filter)} on ${path} within ${DELIVERY_TIMEOUT_MS} ms`,
    RECEIVER.describe(path),
  );
  return verifyDelivery(client, found[0], secret, what);
}

const TWO_DAYS = 2 * 86400;

// Moves the platform's test clock (Switchboard's own endpoint, through the
// SDK's rawRequest): what comes due in that time happens now.
async function advanceClock(client, seconds) {
  return client.rawRequest('POST', '/switchboard/v1/clock/advance', { seconds });
}

async function connectEndpoint(client, path, enabledEvents) {
  const we = await client.webhookEndpoints.create({
    url: RECEIVER.url(path),
    enabled_events: enabledEvents,
    connect: true,
  });
  check(typeof we.application === 'string' && we.application.startsWith('ca_'), 'connect endpoint application is ca_…', we);
  check(typeof we.secret === 'string' && we.secret.startsWith('whsec_'), 'connect endpoint create returns its secret', we);
  return we;
}

function usdAmount(list) {
  const entry = (list || []).find((b) => b.currency === 'usd');
  return entry ? entry.amount : undefined;
}

// ---------------------------------------------------------------------------
// Tests

async function test_webhook_endpoint_crud() {
  const client = newClient();
  const url = RECEIVER.url(`/${unique('crud')}`);
  const we = await client.webhookEndpoints.create({
    url,
    enabled_events: QUIET_EVENTS,
    description: 'compat crud',
    metadata: { suite: 'node' },
  });
  try {
    check(we.id.startsWith('we_'), 'endpoint id starts with we_', we);
    checkEq(we.object, 'webhook_endpoint', 'object', we);
    check(typeof we.secret === 'string' && we.secret.startsWith('whsec_'), 'create returns secret whsec_…', we);
    checkEq(we.status, 'enabled', 'status after create', we);
    checkEq(we.enabled_events, QUIET_EVENTS, 'enabled_events', we);
    checkEq(we.url, url, 'url', we);
    checkEq(we.description, 'compat crud', 'description', we);
    checkEq(we.metadata, { suite: 'node' }, 'metadata', we);
    checkEq(we.livemode, false, 'livemode', we);
    checkEq(we.application, null, 'application of an account endpoint', we);
    check(typeof we.lastResponse.requestId === 'string' && we.lastResponse.requestId.startsWith('req_'),
      'lastResponse.requestId', we.lastResponse.headers);
    checkEq(we.lastResponse.statusCode, 200, 'lastResponse.statusCode');

    let got = await client.webhookEndpoints.retrieve(we.id);
    checkEq(got.id, we.id, 'retrieve id', got);
    check(!('secret' in got), 'retrieve must not include secret', got);
    checkEq(got.enabled_events, QUIET_EVENTS, 'retrieved enabled_events', got);

    let upd = await client.webhookEndpoints.update(we.id, {
      description: 'updated by node',
      disabled: true,
      metadata: { extra: '1' },
    });
    checkEq(upd.description, 'updated by node', 'updated description', upd);
    checkEq(upd.status, 'disabled', 'status after disabled=true', upd);
    checkEq(upd.metadata, { suite: 'node', extra: '1' }, 'merged metadata', upd);
    check(!('secret' in upd), 'update must not include secret', upd);
    got = await client.webhookEndpoints.retrieve(we.id);
    checkEq(got.status, 'disabled', 'retrieved status after update', got);

    upd = await client.webhookEndpoints.update(we.id, { disabled: false, metadata: { extra: '' } });
    checkEq(upd.status, 'enabled', 'status after disabled=false', upd);
    checkEq(upd.metadata, { suite: 'node' }, 'metadata key removed by empty string', upd);

    upd = await client.webhookEndpoints.update(we.id, { enabled_events: ['customer.created', 'customer.updated'] });
    checkEq(upd.enabled_events, ['customer.created', 'customer.updated'], 'enabled_events replaced', upd);

    const listed = await client.webhookEndpoints.list({ limit: 100 });
    checkEq(listed.object, 'list', 'list object', listed);
    checkEq(listed.url, '/v1/webhook_endpoints', 'list url', listed);
    const matches = [];
    for await (const e of client.webhookEndpoints.list({ limit: 100 })) if (e.id === we.id) matches.push(e);
    checkEq(matches.length, 1, 'endpoint appears once in list', listed);
    check(!('secret' in matches[0]), 'list must not include secret', matches[0]);

    const deleted = await client.webhookEndpoints.del(we.id);
    checkEq(deleted.id, we.id, 'deleted id', deleted);
    checkEq(deleted.deleted, true, 'deleted flag', deleted);
  } catch (e) {
    await deleteEndpointsQuietly(client, [we.id]);
    throw e;
  }

  let e = await expectError(errors.StripeInvalidRequestError, () => client.webhookEndpoints.retrieve(we.id),
    'retrieve after delete');
  checkEq(e.statusCode, 404, 'statusCode after delete', errorSummary(e));
  checkEq(e.code, 'resource_missing', 'code after delete', errorSummary(e));
  checkEq(e.param, 'id', 'param after delete', errorSummary(e));
  e = await expectError(errors.StripeInvalidRequestError, () => client.webhookEndpoints.del(we.id), 'delete twice');
  checkEq(e.statusCode, 404, 'statusCode of second delete', errorSummary(e));
}

async function test_webhook_endpoint_auto_paging() {
  const client = newClient();
  const created = [];
  try {
    for (let i = 0; i < 13; i++) {
      const we = await client.webhookEndpoints.create({
        url: RECEIVER.url(`/${unique(`page${i}`)}`),
        enabled_events: QUIET_EVENTS,
      });
      created.push(we.id);
    }
    resetLog();
    const first = await client.webhookEndpoints.list({ limit: 3 });
    check(first.data.length <= 3, 'a limit=3 page has at most 3 items', first);
    checkEq(first.has_more, true, 'first page has_more', first);

    resetLog();
    const seen = [];
    for await (const we of client.webhookEndpoints.list({ limit: 3 })) seen.push(we.id);
    const dupes = [...new Set(seen.filter((id, i) => seen.indexOf(id) !== i))];
    check(!dupes.length, `for await yielded duplicates: ${dupes}`, seen);
    for (const id of created) {
      checkEq(seen.filter((s) => s === id).length, 1, `times ${id} was yielded`, { seen, created });
    }
    const gets = LOG.exchanges.filter((ex) => ex.method === 'GET');
    check(gets.length >= 5, 'auto-paging 13+ endpoints with limit=3 takes at least 5 requests', gets.length);
    gets.forEach((ex, i) => {
      check(/[?&]limit=3(&|$)/.test(ex.url), 'every page request keeps limit=3', ex.url);
      if (i > 0) check(/[?&]starting_after=we_/.test(ex.url), 'later pages use starting_after', ex.url);
      check(ex.responseBody && ex.responseBody.data.length <= 3, 'page size <= 3', ex.responseBody);
    });
    // Newest first, ties broken consistently.
    checkEq(seen.filter((id) => created.includes(id)), [...created].reverse(), 'newest-first order of created endpoints', seen);

    const arr = await client.webhookEndpoints.list({ limit: 4 }).autoPagingToArray({ limit: 1000 });
    checkEq(arr.map((we) => we.id).filter((id) => created.includes(id)), [...created].reverse(),
      'autoPagingToArray yields the created endpoints newest first', arr.map((we) => we.id));

    resetLog();
    const firstFive = [];
    await client.webhookEndpoints.list({ limit: 2 }).autoPagingEach((we) => {
      firstFive.push(we.id);
      return firstFive.length < 5; // false stops the iteration
    });
    checkEq(firstFive.length, 5, 'autoPagingEach stops when the callback returns false', firstFive);
    checkEq(LOG.exchanges.length, 3, 'autoPagingEach fetched only the pages it needed (limit=2, 5 items)',
      LOG.exchanges.map((ex) => ex.url));

    // Backwards: ending_before from the oldest one walks towards the newest, oldest first.
    const back = [];
    for await (const we of client.webhookEndpoints.list({ limit: 3, ending_before: created[0] })) back.push(we.id);
    checkEq(back.filter((id) => created.includes(id)), created.slice(1),
      'ending_before auto-paging yields the newer endpoints oldest-first', back);
  } finally {
    await deleteEndpointsQuietly(client, created);
  }
}

async function test_customers_and_events() {
  const client = newClient();
  const t0 = Math.floor(Date.now() / 1000) - 1;
  const cus = await client.customers.create({
    name: 'Ada',
    email: 'ada@example.com',
    description: 'compat',
    phone: '+15555550100',
    address: { line1: '1 Main St', city: 'London', country: 'GB' },
    preferred_locales: ['en', 'fr'],
    metadata: { suite: 'node' },
  });
  check(cus.id.startsWith('cus_'), 'customer id prefix', cus);
  checkEq(cus.object, 'customer', 'object', cus);
  checkEq(cus.name, 'Ada', 'name', cus);
  checkEq(cus.address.city, 'London', 'address.city', cus);
  checkEq(cus.address.line2 ?? null, null, 'address.line2', cus);
  checkEq(cus.preferred_locales, ['en', 'fr'], 'preferred_locales', cus);
  checkEq(cus.metadata, { suite: 'node' }, 'metadata', cus);
  checkEq(cus.balance, 0, 'balance', cus);

  const got = await client.customers.retrieve(cus.id);
  checkEq({ ...got }, { ...cus }, 'retrieve equals create response');

  const upd = await client.customers.update(cus.id, { name: 'Ada Lovelace', email: 'ada@lovelace.example' });
  checkEq(upd.name, 'Ada Lovelace', 'updated name', upd);
  checkEq(upd.email, 'ada@lovelace.example', 'updated email', upd);
  checkEq(upd.description, 'compat', 'unchanged description', upd);

  const listed = await client.customers.list({ limit: 100 }).autoPagingToArray({ limit: 10000 });
  checkEq(listed.filter((c) => c.id === cus.id).length, 1, 'customer listed once');

  let events = await findEvents(client, 'customer.created', cus.id);
  checkEq(events.length, 1, `customer.created events for ${cus.id}`, events);
  let ev = events[0];
  check(ev.id.startsWith('evt_'), 'event id prefix', ev);
  checkEq(ev.object, 'event', 'event object', ev);
  checkEq(ev.data.object.object, 'customer', 'data.object.object', ev);
  checkEq(ev.data.object.name, 'Ada', 'customer.created carries the created state', ev);
  check(ev.created >= t0, 'event created timestamp', ev);
  check(typeof ev.api_version === 'string', 'event api_version', ev);
  checkEq(ev.livemode, false, 'event livemode', ev);

  events = await findEvents(client, 'customer.updated', cus.id);
  checkEq(events.length, 1, `customer.updated events for ${cus.id}`, events);
  ev = events[0];
  checkEq(ev.data.object.name, 'Ada Lovelace', 'customer.updated carries the new state', ev);
  checkEq(ev.data.previous_attributes, { name: 'Ada', email: 'ada@example.com' }, 'previous_attributes', ev);

  // Metadata added in an update: Stripe shows the new key as previously null.
  await client.customers.update(cus.id, { metadata: { tier: 'gold' } });
  events = await findEvents(client, 'customer.updated', cus.id);
  checkEq(events.length, 2, 'customer.updated events after metadata update', events);
  checkEq(events[0].data.previous_attributes, { metadata: { tier: null } },
    'previous_attributes of a metadata addition (newest event first)', events[0]);

  // types[] (sent by stripe-node as types[0], types[1]) and created[gte].
  const mine = [];
  for await (const e of client.events.list({ types: ['customer.created', 'customer.updated'], created: { gte: t0 }, limit: 100 })) {
    if (e.data.object.id === cus.id) mine.push(e.type);
  }
  checkEq(mine.sort(), ['customer.created', 'customer.updated', 'customer.updated'], 'types[] filter', mine);
  const future = await client.events.list({ created: { gt: Math.floor(Date.now() / 1000) + 3600 } });
  checkEq(future.data.length, 0, 'created[gt]=future finds nothing', future);

  const wildcard = [];
  for await (const e of client.events.list({ type: 'customer.*', created: { gte: t0 }, limit: 100 })) {
    if (e.data.object.id === cus.id) wildcard.push(e.type);
  }
  checkEq(wildcard.sort(), ['customer.created', 'customer.updated', 'customer.updated'], 'type=customer.* filter', wildcard);

  const gotEv = await client.events.retrieve(ev.id);
  checkEq(gotEv.id, ev.id, 'events.retrieve id', gotEv);
  checkEq(gotEv.type, 'customer.updated', 'events.retrieve type', gotEv);

  const deleted = await client.customers.del(cus.id);
  checkEq(deleted.id, cus.id, 'deleted id', deleted);
  checkEq(deleted.deleted, true, 'deleted flag', deleted);
  events = await findEvents(client, 'customer.deleted', cus.id);
  checkEq(events.length, 1, 'customer.deleted events', events);

  const e = await expectError(errors.StripeInvalidRequestError,
    () => client.customers.update(cus.id, { name: 'ghost' }), 'update a deleted customer');
  checkEq(e.statusCode, 404, 'update deleted: statusCode', errorSummary(e));
  checkEq(e.code, 'resource_missing', 'update deleted: code', errorSummary(e));
}

async function test_idempotency() {
  const client = newClient();
  const key = unique('idem');
  const params = { name: 'Idem', email: 'idem@example.com' };
  const first = await client.customers.create({ ...params }, { idempotencyKey: key });
  resetLog();
  const second = await client.customers.create({ ...params }, { idempotencyKey: key });
  checkEq(second.id, first.id, 'same idempotency key replays the same customer', first, second);
  checkEq({ ...second }, { ...first }, 'replayed body equals the original');
  const last = LOG.exchanges[LOG.exchanges.length - 1];
  checkEq(last.headers['Idempotency-Key'], key, 'SDK sent our Idempotency-Key', last.headers);
  checkEq(last.responseHeaders['idempotent-replayed'], 'true', 'Idempotent-Replayed response header', last.responseHeaders);
  checkEq(second.lastResponse.headers['idempotent-replayed'], 'true', 'lastResponse exposes Idempotent-Replayed');

  let events = await findEvents(client, 'customer.created', first.id);
  checkEq(events.length, 1, 'one customer.created event for the replayed create', events.map((e) => e.id));
  checkEq(events[0].request && events[0].request.idempotency_key, key, 'event request.idempotency_key', events[0]);

  // stripe-node keys every POST itself; without our key two creates are two customers.
  const a = await client.customers.create({ ...params });
  const b = await client.customers.create({ ...params });
  check(a.id !== b.id, 'creates with SDK-generated keys are distinct', a.id, b.id);

  const e = await expectError(errors.StripeIdempotencyError,
    () => client.customers.create({ name: 'Different' }, { idempotencyKey: key }),
    'same idempotency key with different params');
  checkEq(e.statusCode, 400, 'StripeIdempotencyError statusCode', errorSummary(e));
  checkEq(e.rawType, 'idempotency_error', 'error type', errorSummary(e));
  checkEq(e.type, 'StripeIdempotencyError', 'SDK error type', errorSummary(e));

  events = await findEvents(client, 'customer.created', first.id);
  checkEq(events.length, 1, 'still one customer.created event', events.map((ev) => ev.id));

  // Keys are scoped to the account acting: the same key and params as a
  // connected account make that account's own customer, replayed in turn.
  const acct = await client.accounts.create({ type: 'custom', country: 'US' });
  try {
    const opts = { idempotencyKey: key, stripeAccount: acct.id };
    const scoped = await client.customers.create({ ...params }, opts);
    check(scoped.id !== first.id, 'same key as a connected account creates a separate customer', first, scoped);
    const scopedAgain = await client.customers.create({ ...params }, opts);
    checkEq(scopedAgain.id, scoped.id, 'replay as the connected account', scoped, scopedAgain);
    checkEq(scopedAgain.lastResponse.headers['idempotent-replayed'], 'true', 'connected replay is marked replayed');
    const fetched = await client.customers.retrieve(scoped.id, {}, { stripeAccount: acct.id });
    checkEq(fetched.id, scoped.id, 'the connected customer exists in the connected account', fetched);
  } finally {
    await deleteAccountsQuietly(client, [acct.id]);
  }
}

async function test_errors() {
  const client = newClient();
  const accounts = [];
  try {
    const bad = newClient(`sk_test_${'x'.repeat(24)}`);
    let e = await expectError(errors.StripeAuthenticationError, () => bad.customers.list(), 'bad API key');
    checkEq(e.statusCode, 401, 'bad key statusCode', errorSummary(e));
    checkEq(e.type, 'StripeAuthenticationError', 'bad key SDK type', errorSummary(e));
    check((e.message || '').includes('Invalid API Key'), 'bad key message mentions Invalid API Key', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.customers.create({ name: 'x', nonexistent_param: '1' }), 'unknown parameter');
    checkEq(e.statusCode, 400, 'unknown param statusCode', errorSummary(e));
    checkEq(e.param, 'nonexistent_param', 'unknown param name', errorSummary(e));
    checkEq(e.code, 'parameter_unknown', 'unknown param code', errorSummary(e));
    checkEq(e.rawType, 'invalid_request_error', 'unknown param raw type', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.webhookEndpoints.create({ enabled_events: ['*'] }), 'endpoint create without url');
    checkEq(e.statusCode, 400, 'missing url statusCode', errorSummary(e));
    checkEq(e.param, 'url', 'missing url param', errorSummary(e));
    checkEq(e.code, 'parameter_missing', 'missing url code', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.webhookEndpoints.create({ url: RECEIVER.url('/never'), enabled_events: ['customer.exploded'] }),
      'invalid enabled_events');
    checkEq(e.statusCode, 400, 'invalid enabled_events statusCode', errorSummary(e));
    checkEq(e.param, 'enabled_events', 'invalid enabled_events param', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.customers.retrieve('cus_doesnotexist000000'), 'unknown customer');
    checkEq(e.statusCode, 404, 'unknown customer statusCode', errorSummary(e));
    checkEq(e.code, 'resource_missing', 'unknown customer code', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.events.retrieve('evt_doesnotexist000000'), 'unknown event');
    checkEq(e.statusCode, 404, 'unknown event statusCode', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.customers.list({ limit: 1000 }), 'limit out of range');
    checkEq(e.param, 'limit', 'bad limit param', errorSummary(e));

    e = await expectError(errors.StripeInvalidRequestError,
      () => client.rawRequest('GET', '/v1/no_such_resources'), 'unknown route');
    checkEq(e.statusCode, 404, 'unknown route statusCode', errorSummary(e));

    // 402: a declined card.
    e = await expectError(errors.StripeCardError,
      () => client.paymentIntents.create({
        amount: 2000, currency: 'usd', payment_method: 'pm_card_chargeDeclined', confirm: true,
      }), 'declined card');
    checkEq(e.statusCode, 402, 'card error statusCode', errorSummary(e));
    checkEq(e.type, 'StripeCardError', 'card error SDK type', errorSummary(e));
    checkEq(e.rawType, 'card_error', 'card error raw type', errorSummary(e));
    checkEq(e.code, 'card_declined', 'card error code', errorSummary(e));
    checkEq(e.decline_code, 'generic_decline', 'card error decline_code', errorSummary(e));
    check(e.charge && e.charge.startsWith('ch_'), 'card error charge', errorSummary(e), e.raw);
    check(e.payment_intent && e.payment_intent.id && e.payment_intent.id.startsWith('pi_'),
      'card error carries the PaymentIntent', e.raw);
    checkEq(e.payment_intent.status, 'requires_payment_method', 'declined PaymentIntent status', e.payment_intent);
    const pi = await client.paymentIntents.retrieve(e.payment_intent.id);
    checkEq(pi.last_payment_error && pi.last_payment_error.decline_code, 'generic_decline',
      'retrieved PaymentIntent last_payment_error', pi);

    // 404 for a connected account's object without Stripe-Account; 403 for
    // what a connected account may not do.
    const acct = await client.accounts.create({ type: 'custom', country: 'US' });
    accounts.push(acct.id);
    const cus = await client.customers.create({ name: 'Scoped' }, { stripeAccount: acct.id });
    e = await expectError(errors.StripeInvalidRequestError,
      () => client.customers.retrieve(cus.id), 'connected customer without stripeAccount');
    checkEq(e.statusCode, 404, 'connected object without stripeAccount: statusCode', errorSummary(e));
    checkEq(e.code, 'resource_missing', 'connected object without stripeAccount: code', errorSummary(e));

    e = await expectError(errors.StripePermissionError,
      () => client.accounts.create({ type: 'custom' }, { stripeAccount: acct.id }),
      'connected account creating an account');
    checkEq(e.statusCode, 403, 'permission error statusCode', errorSummary(e));
    checkEq(e.type, 'StripePermissionError', 'permission error SDK type', errorSummary(e));
    e = await expectError(errors.StripePermissionError,
      () => client.accounts.list({}, { stripeAccount: acct.id }), 'connected account listing accounts');
    checkEq(e.statusCode, 403, 'list accounts as connected account: statusCode', errorSummary(e));

    // Idempotency errors are their own class.
    const key = unique('idem-err');
    await client.customers.create({ name: 'One' }, { idempotencyKey: key });
    e = await expectError(errors.StripeIdempotencyError,
      () => client.customers.create({ name: 'Two' }, { idempotencyKey: key }), 'reused idempotency key');
    checkEq(e.statusCode, 400, 'idempotency error statusCode', errorSummary(e));

    // Every error carries a Request-Id the SDK exposes, and the raw headers.
    check(typeof e.requestId === 'string' && e.requestId.startsWith('req_'), 'error requestId', errorSummary(e), e.headers);
    checkEq(e.headers && e.headers['request-id'], e.requestId, 'error headers include request-id', e.headers);
    check(e instanceof errors.StripeError, 'errors derive from StripeError');
  } finally {
    await deleteAccountsQuietly(client, accounts);
  }
}

async function test_webhook_delivery_verified() {
  const client = newClient();
  const path = `/${unique('delivery')}`;
  const we = await client.webhookEndpoints.create({ url: RECEIVER.url(path), enabled_events: ['*'] });
  try {
    const cus = await client.customers.create({ name: 'Webhook Target', email: 'hook@example.com' });
    const found = await RECEIVER.waitFor(deliveryFor(path, { type: 'customer.created', objectId: cus.id }));
    check(found.length, `customer.created for ${cus.id} delivered to ${path} within ${DELIVERY_TIMEOUT_MS} ms`,
      RECEIVER.describe(path));
    const d = found[0];
    check(Buffer.isBuffer(d.body) && d.body.length > 0, 'raw body is a non-empty Buffer');
    const event = verifyDelivery(client, d, we.secret, 'customer.created delivery');
    checkEq(event.type, 'customer.created', 'delivered event type', event);
    checkEq(event.object, 'event', 'delivered object', event);
    checkEq(event.data.object.id, cus.id, 'delivered data.object.id', event);
    checkEq(event.data.object.email, 'hook@example.com', 'delivered customer email', event);
    check(event.pending_webhooks >= 1, "delivered payload's pending_webhooks counts this endpoint", event);
    check(!event.account, 'a platform event has no account', event);

    // The async variant and the signature parser agree.
    const again = await client.webhooks.constructEventAsync(d.body, d.headers['stripe-signature'], we.secret);
    checkEq(again.id, event.id, 'constructEventAsync', again);
    const sig = d.headers['stripe-signature'];
    check(/^t=\d+,v1=[0-9a-f]{64}(,v1=[0-9a-f]{64})*$/.test(sig), 'Stripe-Signature format t=…,v1=…', sig);
    const t = Number(sig.split(',')[0].slice(2));
    check(Math.abs(Date.now() / 1000 - t) < 300, 'signature timestamp is current', sig);
    const expected = client.webhooks.generateTestHeaderString({ payload: d.body.toString('utf8'), secret: we.secret, timestamp: t });
    check(sig.split(',').includes(expected.split(',')[1]),
      'Stripe-Signature v1 equals the SDK\'s generateTestHeaderString for the same timestamp', { sig, expected });

    // A wrong secret, and a tampered body, must be rejected by the SDK.
    await expectError(errors.StripeSignatureVerificationError,
      () => client.webhooks.constructEvent(d.body, sig, 'whsec_wrong'), 'constructEvent with a wrong secret');
    const tampered = Buffer.from(d.body.toString('utf8').replace('hook@example.com', 'evil@example.com'));
    await expectError(errors.StripeSignatureVerificationError,
      () => client.webhooks.constructEvent(tampered, sig, we.secret), 'constructEvent with a tampered body');

    const apiEvent = await client.events.retrieve(event.id);
    checkEq(apiEvent.type, 'customer.created', 'API event type', apiEvent);
    checkEq(apiEvent.data.object.id, cus.id, 'API event object', apiEvent);
    const settled = await poll(() => client.events.retrieve(event.id), (e) => e.pending_webhooks === 0);
    checkEq(settled.pending_webhooks, 0, 'pending_webhooks after successful delivery', settled);

    const ok = await client.events
      .list({ delivery_success: true, type: 'customer.created', limit: 100 })
      .autoPagingToArray({ limit: 10000 });
    check(ok.some((e) => e.id === event.id), 'delivery_success=true lists the event');

    checkEq(RECEIVER.matching(deliveryFor(path, { eventId: event.id })).length, 1,
      `deliveries of ${event.id}`, RECEIVER.describe(path));
  } finally {
    await deleteEndpointsQuietly(client, [we.id]);
  }
}

async function test_event_resend() {
  const client = newClient();
  const path = `/${unique('resend')}`;
  const we = await client.webhookEndpoints.create({ url: RECEIVER.url(path), enabled_events: ['customer.created'] });
  try {
    const cus = await client.customers.create({ name: 'Resend Target' });
    const first = await receiveVerified(client, path, { type: 'customer.created', objectId: cus.id }, we.secret,
      'first delivery');
    // The first delivery is acknowledged: pending_webhooks (which counted this
    // endpoint when the payload was built) has gone down.
    const settled = await poll(() => client.events.retrieve(first.id), (e) => e.pending_webhooks < first.pending_webhooks);
    check(settled.pending_webhooks < first.pending_webhooks, 'pending_webhooks goes down before resend', settled);

    const resp = await client.rawRequest('POST', `/v1/events/${first.id}/retry`, { webhook_endpoint: we.id });
    checkEq(resp.id, first.id, 'retry answers with the event', resp);
    checkEq(resp.object, 'event', 'retry answers with an event object', resp);

    const again = await RECEIVER.waitFor(deliveryFor(path, { eventId: first.id }), { count: 2 });
    check(again.length, `resent delivery of ${first.id} within ${DELIVERY_TIMEOUT_MS} ms`, RECEIVER.describe(path));
    const resent = verifyDelivery(client, again[1], we.secret, 'resent delivery');
    checkEq(resent.id, first.id, 'resent event id', resent);
    checkEq(resent.type, 'customer.created', 'resent event type', resent);
    checkEq(resent.data.object.id, cus.id, 'resent data.object.id', resent);

    let e = await expectError(errors.StripeInvalidRequestError,
      () => client.rawRequest('POST', `/v1/events/${first.id}/retry`, {}), 'retry without webhook_endpoint');
    checkEq(e.param, 'webhook_endpoint', 'retry without endpoint: param', errorSummary(e));
    e = await expectError(errors.StripeInvalidRequestError,
      () => client.rawRequest('POST', `/v1/events/${first.id}/retry`, { webhook_endpoint: 'we_nope00000000' }),
      'retry to an unknown endpoint');
    checkEq(e.statusCode, 404, 'retry to unknown endpoint: statusCode', errorSummary(e));
  } finally {
    await deleteEndpointsQuietly(client, [we.id]);
  }
}

// Connect: a connect=true endpoint hears a connected account's events (with
// event.account), an account endpoint does not, and objects are scoped by
// Stripe-Account.
async function test_connect_scoped_customers() {
  const client = newClient();
  const platformPath = `/${unique('platform')}`;
  const connectPath = `/${unique('connect')}`;
  const endpoints = [];
  const accounts = [];
  try {
    const platformWe = await client.webhookEndpoints.create({
      url: RECEIVER.url(platformPath),
      enabled_events: ['customer.created'],
    });
    endpoints.push(platformWe.id);
    const connectWe = await connectEndpoint(client, connectPath, ['customer.created']);
    endpoints.push(connectWe.id);
    const got = await client.webhookEndpoints.retrieve(connectWe.id);
    checkEq(got.application, connectWe.application, 'retrieved connect endpoint application', got);

    const acct = await client.accounts.create({ type: 'custom', country: 'US', email: 'connected@example.com' });
    accounts.push(acct.id);
    check(acct.id.startsWith('acct_'), 'account id prefix', acct);
    checkEq(acct.object, 'account', 'account object', acct);
    checkEq(acct.type, 'custom', 'account type', acct);
    checkEq(acct.email, 'connected@example.com', 'account email', acct);
    const opts = { stripeAccount: acct.id };

    const cus = await client.customers.create({ name: 'Connected Customer' }, opts);
    check(cus.id.startsWith('cus_'), 'connected customer id', cus);
    const fetched = await client.customers.retrieve(cus.id, {}, opts);
    checkEq(fetched.name, 'Connected Customer', 'fetched back with stripeAccount', fetched);
    const e = await expectError(errors.StripeInvalidRequestError, () => client.customers.retrieve(cus.id),
      'connected customer fetched without stripeAccount');
    checkEq(e.statusCode, 404, 'without stripeAccount: statusCode', errorSummary(e));
    checkEq(e.code, 'resource_missing', 'without stripeAccount: code', errorSummary(e));

    const scoped = await client.customers.list({ limit: 100 }, opts).autoPagingToArray({ limit: 10000 });
    check(scoped.some((c) => c.id === cus.id), 'list with stripeAccount includes the customer', scoped.map((c) => c.id));
    const platformList = await client.customers.list({ limit: 100 }).autoPagingToArray({ limit: 10000 });
    check(!platformList.some((c) => c.id === cus.id), 'platform list excludes the connected customer');

    const platformCus = await client.customers.create({ name: 'Platform Customer' });

    const connected = await receiveVerified(client, connectPath, { type: 'customer.created', objectId: cus.id },
      connectWe.secret, 'connected customer.created on the Connect endpoint');
    checkEq(connected.account, acct.id, 'event.account of the connected event', connected);
    const own = await receiveVerified(client, platformPath, { type: 'customer.created', objectId: platformCus.id },
      platformWe.secret, 'platform customer.created on the account endpoint');
    check(!own.account, 'platform event has no account', own);

    const apiEvent = await client.events.retrieve(connected.id, {}, opts);
    checkEq(apiEvent.account, acct.id, 'events.retrieve with stripeAccount: account', apiEvent);
    const listed = await findEvents(client, 'customer.created', cus.id, {}, opts);
    checkEq(listed.map((ev) => ev.id), [connected.id], 'events.list with stripeAccount finds the connected event');
    const notListed = await findEvents(client, 'customer.created', platformCus.id, {}, opts);
    checkEq(notListed.length, 0, "a connected account's event list excludes platform events", notListed);

    // Once settled, neither endpoint got the other's event.
    const s1 = await poll(() => client.events.retrieve(connected.id, {}, opts), (ev) => ev.pending_webhooks === 0);
    checkEq(s1.pending_webhooks, 0, 'connected event settles', s1);
    const s2 = await poll(() => client.events.retrieve(own.id), (ev) => ev.pending_webhooks === 0);
    checkEq(s2.pending_webhooks, 0, 'platform event settles', s2);
    checkEq(RECEIVER.matching(deliveryFor(platformPath, { eventId: connected.id })).length, 0,
      'account endpoint must not get the connected account event', RECEIVER.describe(platformPath));
    checkEq(RECEIVER.matching(deliveryFor(connectPath, { eventId: own.id })).length, 0,
      "Connect endpoint must not get the platform's own event", RECEIVER.describe(connectPath));
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
    await deleteAccountsQuietly(client, accounts);
  }
}

// account.updated, person.updated, account.external_account.updated.
async function test_connect_account_events() {
  const client = newClient();
  const path = `/${unique('connect-acct')}`;
  const endpoints = [];
  const accounts = [];
  try {
    const we = await connectEndpoint(client, path, [
      'account.updated',
      'person.created',
      'person.updated',
      'account.external_account.created',
      'account.external_account.updated',
    ]);
    endpoints.push(we.id);

    const acct = await client.accounts.create({
      type: 'custom',
      country: 'US',
      business_type: 'company',
      company: { name: 'Compat Co' },
      tos_acceptance: { date: Math.floor(Date.now() / 1000), ip: '127.0.0.1' },
      capabilities: { card_payments: { requested: true }, transfers: { requested: true } },
    });
    accounts.push(acct.id);
    checkEq(acct.charges_enabled, false, 'new custom account: charges_enabled', acct);
    check(acct.requirements.currently_due.includes('external_account'), 'external_account currently due', acct.requirements);

    const upd = await client.accounts.update(acct.id, { email: 'ops@compat.example', metadata: { suite: 'node' } });
    checkEq(upd.email, 'ops@compat.example', 'updated account email', upd);
    checkEq(upd.metadata, { suite: 'node' }, 'updated account metadata', upd);
    const accountUpdated = await RECEIVER.waitFor((d) =>
      deliveryFor(path, { type: 'account.updated', objectId: acct.id })(d) &&
      d.json.data.previous_attributes && 'email' in d.json.data.previous_attributes);
    check(accountUpdated.length, 'account.updated for the email change', RECEIVER.describe(path));
    let ev = verifyDelivery(client, accountUpdated[0], we.secret, 'account.updated');
    checkEq(ev.account, acct.id, 'account.updated event.account', ev);
    checkEq(ev.data.object.email, 'ops@compat.example', 'account.updated data.object.email', ev);
    checkEq(ev.data.previous_attributes.email, null, 'account.updated previous email', ev);

    const person = await client.accounts.createPerson(acct.id, {
      first_name: 'Ada',
      last_name: 'Lovelace',
      dob: { day: 10, month: 12, year: 1980 },
      relationship: { representative: true, title: 'CEO' },
    });
    check(person.id.startsWith('person_'), 'person id prefix', person);
    checkEq(person.account, acct.id, 'person.account', person);
    checkEq(person.object, 'person', 'person object', person);
    ev = await receiveVerified(client, path, { type: 'person.created', objectId: person.id }, we.secret, 'person.created');
    checkEq(ev.account, acct.id, 'person.created event.account', ev);

    const pu = await client.accounts.updatePerson(acct.id, person.id, { last_name: 'Byron' });
    checkEq(pu.last_name, 'Byron', 'updated person last_name', pu);
    ev = await receiveVerified(client, path, { type: 'person.updated', objectId: person.id }, we.secret, 'person.updated');
    checkEq(ev.account, acct.id, 'person.updated event.account', ev);
    checkEq(ev.data.object.last_name, 'Byron', 'person.updated data.object', ev);
    checkEq(ev.data.previous_attributes, { last_name: 'Lovelace' }, 'person.updated previous_attributes', ev);
    const rp = await client.accounts.retrievePerson(acct.id, person.id);
    checkEq(rp.last_name, 'Byron', 'retrievePerson', rp);
    const persons = await client.accounts.listPersons(acct.id, { limit: 10 }).autoPagingToArray({ limit: 100 });
    checkEq(persons.map((p) => p.id), [person.id], 'listPersons');

    const ba = await client.accounts.createExternalAccount(acct.id, { external_account: 'btok_us_verified' });
    check(ba.id.startsWith('ba_'), 'bank account id', ba);
    checkEq(ba.object, 'bank_account', 'external account object', ba);
    checkEq(ba.account, acct.id, 'external account .account', ba);
    checkEq(ba.default_for_currency, true, 'first usd bank account is the default', ba);
    checkEq(ba.status, 'new', 'bank account status', ba);
    ev = await receiveVerified(client, path, { type: 'account.external_account.created', objectId: ba.id }, we.secret,
      'account.external_account.created');
    checkEq(ev.account, acct.id, 'account.external_account.created event.account', ev);

    const bu = await client.accounts.updateExternalAccount(acct.id, ba.id, {
      account_holder_name: 'Compat Co',
      metadata: { purpose: 'payouts' },
    });
    checkEq(bu.account_holder_name, 'Compat Co', 'updated account_holder_name', bu);
    ev = await receiveVerified(client, path, { type: 'account.external_account.updated', objectId: ba.id }, we.secret,
      'account.external_account.updated');
    checkEq(ev.account, acct.id, 'account.external_account.updated event.account', ev);
    checkEq(ev.data.object.account_holder_name, 'Compat Co', 'account.external_account.updated data.object', ev);
    checkEq(ev.data.previous_attributes.account_holder_name, null, 'previous account_holder_name', ev);
    const rba = await client.accounts.retrieveExternalAccount(acct.id, ba.id);
    checkEq(rba.metadata, { purpose: 'payouts' }, 'retrieveExternalAccount metadata', rba);
    const eas = await client.accounts.listExternalAccounts(acct.id, { limit: 10 });
    checkEq(eas.data.map((x) => x.id), [ba.id], 'listExternalAccounts', eas);

    // Representative and bank account given: the account is enabled.
    const full = await client.accounts.retrieve(acct.id);
    checkEq(full.requirements.currently_due, [], 'nothing currently due', full.requirements);
    checkEq(full.charges_enabled, true, 'charges_enabled', full);
    checkEq(full.payouts_enabled, true, 'payouts_enabled', full);
    checkEq(full.external_accounts.data.map((x) => x.id), [ba.id], 'account.external_accounts', full.external_accounts);
    const enabled = await RECEIVER.waitFor((d) =>
      deliveryFor(path, { type: 'account.updated', objectId: acct.id })(d) && d.json.data.object.charges_enabled === true);
    check(enabled.length, 'account.updated when charges become enabled', RECEIVER.describe(path));
    ev = verifyDelivery(client, enabled[0], we.secret, 'account.updated (enabled)');
    checkEq(ev.data.previous_attributes.charges_enabled, false, 'previous charges_enabled', ev);
    checkEq(ev.account, acct.id, 'account.updated (enabled) event.account', ev);

    // The account as itself, the platform, list, and the controller form of create.
    const self = await client.accounts.retrieveCurrent({}, { stripeAccount: acct.id });
    checkEq(self.id, acct.id, 'GET /v1/account with stripeAccount', self);
    const platform = await client.accounts.retrieve();
    check(platform.id.startsWith('acct_') && platform.id !== acct.id, 'GET /v1/account is the platform', platform);
    const all = await client.accounts.list({ limit: 3 }).autoPagingToArray({ limit: 10000 });
    checkEq(all.filter((a) => a.id === acct.id).length, 1, 'accounts.list auto-paging finds the account once');
    const express = await client.accounts.create({
      controller: {
        fees: { payer: 'application' },
        losses: { payments: 'application' },
        stripe_dashboard: { type: 'express' },
      },
    });
    accounts.push(express.id);
    checkEq(express.type, 'express', 'controller[stripe_dashboard][type]=express makes an express account', express);
    checkEq(express.controller.stripe_dashboard.type, 'express', 'controller echoed', express);

    const gone = await client.accounts.del(express.id);
    checkEq({ id: gone.id, deleted: gone.deleted }, { id: express.id, deleted: true }, 'accounts.del', gone);
    // Stripe answers a permission error for an account the platform can no longer reach.
    const e = await expectError(errors.StripePermissionError, () => client.accounts.retrieve(express.id),
      'retrieve a deleted account');
    checkEq(e.statusCode, 403, 'deleted account: statusCode', errorSummary(e));
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
    await deleteAccountsQuietly(client, accounts);
  }
}

// payment_intent.succeeded, balance.available, payout.failed (and what
// follows: the bank account errored, later payouts refused).
async function test_connect_money_events() {
  const client = newClient();
  const path = `/${unique('connect-money')}`;
  const endpoints = [];
  const accounts = [];
  try {
    const we = await connectEndpoint(client, path, [
      'payment_intent.succeeded',
      'balance.available',
      'payout.failed',
      'payout.paid',
      'account.external_account.updated',
    ]);
    endpoints.push(we.id);
    const acct = await client.accounts.create({ type: 'express', country: 'US' });
    accounts.push(acct.id);
    const opts = { stripeAccount: acct.id };
    const bad = await client.accounts.createExternalAccount(acct.id, { external_account: 'btok_us_verified_noAccount' });
    checkEq(bad.default_for_currency, true, 'failing bank is the default', bad);

    let pi = await client.paymentIntents.create(
      { amount: 10000, currency: 'usd', payment_method_types: ['card'], metadata: { suite: 'node' } }, opts);
    check(pi.id.startsWith('pi_'), 'payment intent id', pi);
    checkEq(pi.status, 'requires_payment_method', 'new PaymentIntent status', pi);
    pi = await client.paymentIntents.update(pi.id, { payment_method: 'pm_card_bypassPending', description: 'compat' }, opts);
    checkEq(pi.status, 'requires_confirmation', 'status once a payment method is set', pi);
    pi = await client.paymentIntents.confirm(pi.id, {}, opts);
    checkEq(pi.status, 'succeeded', 'confirmed status', pi);
    checkEq(pi.amount_received, 10000, 'amount_received', pi);
    check(typeof pi.latest_charge === 'string' && pi.latest_charge.startsWith('ch_'), 'latest_charge', pi);
    const rpi = await client.paymentIntents.retrieve(pi.id, {}, opts);
    checkEq(rpi.status, 'succeeded', 'retrieved status', rpi);
    const pis = await client.paymentIntents.list({ limit: 10 }, opts);
    check(pis.data.some((x) => x.id === pi.id), 'paymentIntents.list with stripeAccount', pis);
    const e404 = await expectError(errors.StripeInvalidRequestError, () => client.paymentIntents.retrieve(pi.id),
      'connected PaymentIntent without stripeAccount');
    checkEq(e404.code, 'resource_missing', 'PaymentIntent without stripeAccount: code', errorSummary(e404));

    let ev = await receiveVerified(client, path, { type: 'payment_intent.succeeded', objectId: pi.id }, we.secret,
      'payment_intent.succeeded');
    checkEq(ev.account, acct.id, 'payment_intent.succeeded event.account', ev);
    checkEq(ev.data.object.amount_received, 10000, 'payment_intent.succeeded amount_received', ev);
    ev = await receiveVerified(client, path, { type: 'balance.available', account: acct.id }, we.secret, 'balance.available');
    checkEq(ev.data.object.object, 'balance', 'balance.available data.object', ev);
    const net = usdAmount(ev.data.object.available);
    check(net > 0 && net < 10000, 'balance.available shows the net amount available', ev.data.object);

    let bal = await client.balance.retrieve({}, opts);
    checkEq(bal.object, 'balance', 'balance object', bal);
    checkEq(usdAmount(bal.available), net, 'connected balance available', bal);
    const platformBal = await client.balance.retrieve();
    checkEq(platformBal.object, 'balance', 'platform balance object', platformBal);

    const payout = await client.payouts.create({ amount: 1000, currency: 'usd' }, opts);
    checkEq(payout.status, 'pending', 'a payout is pending until it arrives', payout);
    await advanceClock(client, TWO_DAYS);
    check(payout.id.startsWith('po_'), 'payout id', payout);
    checkEq(payout.destination, bad.id, 'payout goes to the default bank account', payout);
    ev = await receiveVerified(client, path, { type: 'payout.failed', objectId: payout.id }, we.secret, 'payout.failed');
    checkEq(ev.account, acct.id, 'payout.failed event.account', ev);
    checkEq(ev.data.object.status, 'failed', 'payout.failed status', ev);
    checkEq(ev.data.object.failure_code, 'no_account', 'payout.failed failure_code', ev);
    ev = await receiveVerified(client, path, { type: 'account.external_account.updated', objectId: bad.id }, we.secret,
      'account.external_account.updated after the failed payout');
    checkEq(ev.account, acct.id, 'external_account.updated event.account', ev);
    checkEq(ev.data.object.status, 'errored', 'bank account errored', ev);
    checkEq(ev.data.previous_attributes.status, 'new', 'bank account previous status', ev);

    const rpo = await client.payouts.retrieve(payout.id, {}, opts);
    checkEq(rpo.status, 'failed', 'retrieved payout status', rpo);
    checkEq(rpo.failure_code, 'no_account', 'retrieved payout failure_code', rpo);
    const pos = await client.payouts.list({ limit: 10 }, opts);
    check(pos.data.some((p) => p.id === payout.id), 'payouts.list with stripeAccount', pos);
    const rba = await client.accounts.retrieveExternalAccount(acct.id, bad.id);
    checkEq(rba.status, 'errored', 'retrieved bank account status', rba);

    const e = await expectError(errors.StripeInvalidRequestError,
      () => client.payouts.create({ amount: 1000, currency: 'usd' }, opts), 'payout to an errored bank account');
    checkEq(e.statusCode, 400, 'unusable bank: statusCode', errorSummary(e));
    checkEq(e.code, 'bank_account_unusable', 'unusable bank: code', errorSummary(e));
    bal = await client.balance.retrieve({}, opts);
    checkEq(usdAmount(bal.available), net, 'failed payout returned the funds', bal);

    // A working bank account as the new default: the payout is paid.
    const good = await client.accounts.createExternalAccount(acct.id, {
      external_account: 'btok_us_verified',
      default_for_currency: true,
    });
    checkEq(good.default_for_currency, true, 'new default bank account', good);
    const paid = await client.payouts.create({ amount: 500, currency: 'usd' }, opts);
    await advanceClock(client, TWO_DAYS);
    checkEq(paid.destination, good.id, 'payout goes to the new default', paid);
    ev = await receiveVerified(client, path, { type: 'payout.paid', objectId: paid.id }, we.secret, 'payout.paid');
    checkEq(ev.account, acct.id, 'payout.paid event.account', ev);
    bal = await client.balance.retrieve({}, opts);
    checkEq(usdAmount(bal.available), net - 500, 'balance after a paid payout', bal);
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
    await deleteAccountsQuietly(client, accounts);
  }
}

// stripe.oauth.deauthorize → account.application.deauthorized; the account
// is then out of reach (403).
async function test_connect_deauthorize() {
  const client = newClient();
  const path = `/${unique('connect-deauth')}`;
  const endpoints = [];
  const accounts = [];
  try {
    const we = await connectEndpoint(client, path, ['account.application.deauthorized']);
    endpoints.push(we.id);
    const clientId = we.application;
    const acct = await client.accounts.create({ type: 'standard', country: 'US', email: 'std@example.com' });
    accounts.push(acct.id);
    checkEq(acct.type, 'standard', 'standard account', acct);
    const opts = { stripeAccount: acct.id };
    const cus = await client.customers.create({ name: 'Before Deauth' }, opts);

    let e = await expectError(errors.StripeInvalidClientError,
      () => client.oauth.deauthorize({ client_id: 'ca_wrong000000000000000000', stripe_user_id: acct.id }),
      'deauthorize with a wrong client_id');
    checkEq(e.statusCode, 401, 'wrong client_id: statusCode', errorSummary(e));
    checkEq(e.rawType, 'invalid_client', 'wrong client_id: OAuth error', errorSummary(e));
    await client.customers.retrieve(cus.id, {}, opts); // still connected

    resetLog();
    const res = await client.oauth.deauthorize({ client_id: clientId, stripe_user_id: acct.id });
    checkEq(res.stripe_user_id, acct.id, 'deauthorize answer', res);
    const ex = LOG.exchanges.find((x) => x.url.endsWith('/oauth/deauthorize'));
    check(ex && ex.url.startsWith(API_BASE), 'the OAuth call went to Switchboard', LOG.exchanges.map((x) => x.url));

    const ev = await receiveVerified(client, path, { type: 'account.application.deauthorized', account: acct.id },
      we.secret, 'account.application.deauthorized');
    checkEq(ev.account, acct.id, 'deauthorized event.account', ev);
    checkEq(ev.data.object.object, 'application', 'deauthorized data.object.object', ev);
    checkEq(ev.data.object.id, clientId, 'deauthorized data.object.id is the client id', ev);

    e = await expectError(errors.StripePermissionError, () => client.customers.list({}, opts),
      'request as a deauthorized account');
    checkEq(e.statusCode, 403, 'deauthorized: statusCode', errorSummary(e));
    e = await expectError(errors.StripePermissionError, () => client.customers.retrieve(cus.id, {}, opts),
      'retrieve as a deauthorized account');
    checkEq(e.statusCode, 403, 'deauthorized retrieve: statusCode', errorSummary(e));

    e = await expectError(errors.StripeOAuthError,
      () => client.oauth.deauthorize({ client_id: clientId, stripe_user_id: acct.id }), 'deauthorize twice');
    checkEq(e.statusCode, 401, 'deauthorize twice: statusCode', errorSummary(e));
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
    await deleteAccountsQuietly(client, accounts);
  }
}

// Resend of a connected account's event to a Connect endpoint.
async function test_connect_event_resend() {
  const client = newClient();
  const path = `/${unique('connect-resend')}`;
  const endpoints = [];
  const accounts = [];
  try {
    const we = await connectEndpoint(client, path, ['customer.created']);
    endpoints.push(we.id);
    const acct = await client.accounts.create({ type: 'custom', country: 'US' });
    accounts.push(acct.id);
    const opts = { stripeAccount: acct.id };
    const cus = await client.customers.create({ name: 'Connected Resend' }, opts);
    const first = await receiveVerified(client, path, { type: 'customer.created', objectId: cus.id }, we.secret,
      'first delivery');
    checkEq(first.account, acct.id, 'first delivery event.account', first);
    const settled = await poll(() => client.events.retrieve(first.id, {}, opts),
      (ev) => ev.pending_webhooks < first.pending_webhooks);
    check(settled.pending_webhooks < first.pending_webhooks, 'pending_webhooks goes down before resend', settled);

    const resp = await client.rawRequest('POST', `/v1/events/${first.id}/retry`, { webhook_endpoint: we.id }, opts);
    checkEq(resp.id, first.id, 'retry answers with the event', resp);
    checkEq(resp.account, acct.id, 'retry answer account', resp);

    const again = await RECEIVER.waitFor(deliveryFor(path, { eventId: first.id }), { count: 2 });
    check(again.length, `resent delivery of ${first.id}`, RECEIVER.describe(path));
    const resent = verifyDelivery(client, again[1], we.secret, 'resent delivery');
    checkEq(resent.account, acct.id, 'resent event.account', resent);
    checkEq(resent.data.object.id, cus.id, 'resent data.object.id', resent);
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
    await deleteAccountsQuietly(client, accounts);
  }
}

async function test_rate_limit_error() {
  // A second server runs with --rate-limit 1: a burst must raise StripeRateLimitError.
  const base = (process.env.SWITCHBOARD_RATE_LIMITED_API_BASE || '').replace(/\/+$/, '');
  if (!base) throw new CheckFailed('SWITCHBOARD_RATE_LIMITED_API_BASE is not set (a server with --rate-limit 1)');
  const url = new URL(base);
  const limited = new Stripe(TEST_KEY, {
    host: url.hostname,
    port: url.port,
    protocol: url.protocol.replace(/:$/, ''),
    maxNetworkRetries: 0,
  });
  const e = await expectError(errors.StripeRateLimitError, async () => {
    for (let i = 0; i < 5; i++) await limited.customers.list({ limit: 1 });
  }, 'five requests a second at --rate-limit 1');
  checkEq(e.statusCode, 429, 'StripeRateLimitError.statusCode', errorSummary(e));
}

// GET (or POST a form to) a hosted page without following redirects.
async function browse(url, form) {
  const init = { redirect: 'manual' };
  if (form) {
    init.method = 'POST';
    init.headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    init.body = new URLSearchParams(form).toString();
  }
  const r = await fetch(url, init);
  return { status: r.status, location: r.headers.get('location'), body: await r.text() };
}

// The inputs of a hosted page's form, as a browser would submit them.
function formFields(html) {
  const fields = {};
  for (const m of html.matchAll(/<input ([^>]*)>/g)) {
    const attrs = m[1];
    const name = (attrs.match(/name=([^\s>"]+)/) || [])[1];
    if (!name) continue;
    if (/type=checkbox/.test(attrs)) {
      if (/\bchecked\b/.test(attrs)) fields[name] = 'on';
    } else {
      fields[name] = (attrs.match(/value="([^"]*)"/) || [, ''])[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"');
    }
  }
  const selected = html.match(/<option value=(\w+) selected>/);
  if (selected) fields.business_type = selected[1];
  return fields;
}

// Money movement with the SDK's resources: a destination charge with a fee,
// a refund that reverses the transfer, separate transfers and reversals, a
// direct charge's application fee and its refund, manual capture with an
// incremented authorization, a dispute won with evidence, a top-up.
async function test_money_movement() {
  const client = newClient();
  const path = `/${unique('money')}`;
  const endpoints = [];
  try {
    const we = await client.webhookEndpoints.create({
      url: RECEIVER.url(path),
      enabled_events: ['refund.created', 'transfer.reversed', 'application_fee.created', 'charge.dispute.closed', 'topup.succeeded'],
    });
    endpoints.push(we.id);
    const acct = await client.accounts.create({
      type: 'custom', country: 'US', business_type: 'individual',
      individual: { first_name: 'Node', last_name: 'Seller', dob: { day: 1, month: 1, year: 1990 } },
      tos_acceptance: { date: 1700000000, ip: '127.0.0.1' },
      capabilities: { card_payments: { requested: true }, transfers: { requested: true } },
      external_account: 'btok_us_verified',
    });
    const pi = await client.paymentIntents.create({
      amount: 10000, currency: 'usd', payment_method: 'pm_card_bypassPending', confirm: true,
      application_fee_amount: 1000, transfer_data: { destination: acct.id },
    });
    checkEq(pi.status, 'succeeded', 'destination charge', pi);
    const charge = await client.charges.retrieve(pi.latest_charge, { expand: ['transfer'] });
    checkEq([charge.transfer.object, charge.transfer.amount, charge.transfer.destination], ['transfer', 9000, acct.id],
      'the automatic transfer, expanded', charge.transfer);
    const refund = await client.refunds.create({ charge: charge.id, amount: 2000, reverse_transfer: true });
    checkEq([refund.object, refund.status, refund.amount], ['refund', 'succeeded', 2000], 'a refund', refund);
    await receiveVerified(client, path, { type: 'refund.created', objectId: refund.id }, we.secret, 'refund.created');
    const reversals = await client.transfers.listReversals(charge.transfer.id);
    checkEq(reversals.data.map((r) => r.amount), [1800], 'reverse_transfer takes back the refunded share', reversals);

    await client.paymentIntents.create({ amount: 5000, currency: 'usd', payment_method: 'pm_card_bypassPending', confirm: true });
    const tr = await client.transfers.create({ amount: 1500, currency: 'usd', destination: acct.id });
    const rev = await client.transfers.createReversal(tr.id, { amount: 500 });
    checkEq([rev.object, rev.amount], ['transfer_reversal', 500], 'a transfer reversal', rev);
    await receiveVerified(client, path, { type: 'transfer.reversed', objectId: tr.id }, we.secret, 'transfer.reversed');

    const direct = await client.paymentIntents.create(
      { amount: 4000, currency: 'usd', payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 250 },
      { stripeAccount: acct.id });
    const fees = await client.applicationFees.list({ charge: direct.latest_charge });
    checkEq(fees.data.map((f) => [f.object, f.amount, f.account]), [['application_fee', 250, acct.id]], 'the direct charge\'s fee', fees);
    await receiveVerified(client, path, { type: 'application_fee.created', objectId: fees.data[0].id }, we.secret, 'application_fee.created');
    const feeRefund = await client.applicationFees.createRefund(fees.data[0].id, { amount: 50 });
    checkEq([feeRefund.object, feeRefund.amount], ['fee_refund', 50], 'an application fee refund', feeRefund);

    const held = await client.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', capture_method: 'manual', confirm: true });
    checkEq(held.status, 'requires_capture', 'an authorization', held);
    const grown = await client.paymentIntents.incrementAuthorization(held.id, { amount: 1300 });
    checkEq(grown.amount_capturable, 1300, 'incremented', grown);
    const captured = await client.paymentIntents.capture(held.id, { amount_to_capture: 1200 });
    checkEq([captured.status, captured.amount_received], ['succeeded', 1200], 'partial capture', captured);

    const disputed = await client.paymentIntents.create({
      amount: 2500, currency: 'usd', payment_method: 'pm_card_createDispute', confirm: true });
    const disputes = await client.disputes.list({ charge: disputed.latest_charge });
    checkEq(disputes.data.length, 1, 'the dispute test card opens a dispute', disputes);
    const dispute = await client.disputes.update(disputes.data[0].id, { evidence: { uncategorized_text: 'losing_evidence' }, submit: true });
    checkEq(dispute.object, 'dispute', 'disputes.update', dispute);
    const closed = await receiveVerified(client, path, { type: 'charge.dispute.closed', objectId: dispute.id }, we.secret,
      'charge.dispute.closed');
    checkEq(closed.data.object.status, 'lost', 'losing evidence loses', closed);

    const topup = await client.topups.create({ amount: 3000, currency: 'usd', description: 'float' });
    checkEq(topup.object, 'topup', 'a top-up', topup);
    await receiveVerified(client, path, { type: 'topup.succeeded', objectId: topup.id }, we.secret, 'topup.succeeded');

    const cus = await client.customers.create({ name: 'Setup' });
    const seti = await client.setupIntents.create({ customer: cus.id, payment_method: 'pm_card_visa', confirm: true });
    checkEq([seti.object, seti.status], ['setup_intent', 'succeeded'], 'a setup intent', seti);
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
  }
}

// Onboarding: an Account Link into the hosted page (its pre-filled form
// submitted as a browser would), capabilities turning active, a login
// link, an account session, and OAuth for a Standard account.
async function test_onboarding_and_oauth() {
  const client = newClient();
  const path = `/${unique('onboarding')}`;
  const endpoints = [];
  try {
    const we = await connectEndpoint(client, path, ['capability.updated', 'account.application.authorized']);
    endpoints.push(we.id);
    const acct = await client.accounts.create({
      type: 'express', capabilities: { card_payments: { requested: true }, transfers: { requested: true } } });
    const caps = await client.accounts.listCapabilities(acct.id);
    checkEq(caps.data.map((c) => [c.object, c.status]).sort(), [['capability', 'inactive'], ['capability', 'inactive']],
      'requested capabilities', caps);
    await expectError(errors.StripeInvalidRequestError, () => client.accounts.createLoginLink(acct.id),
      'a login link before onboarding');
    const link = await client.accountLinks.create({
      account: acct.id, type: 'account_onboarding',
      refresh_url: 'https://platform.example/refresh', return_url: 'https://platform.example/return' });
    checkEq(link.object, 'account_link', 'an account link', link);
    const page = await browse(link.url);
    checkEq(page.status, 200, 'the onboarding page', page.body.slice(0, 200));
    const done = await browse(link.url, formFields(page.body));
    checkEq([done.status, done.location], [303, 'https://platform.example/return'], 'submitted, back to return_url', done.body.slice(0, 300));
    const ev = await receiveVerified(client, path, { type: 'capability.updated', account: acct.id }, we.secret, 'capability.updated');
    checkEq([ev.data.object.object, ev.data.object.status], ['capability', 'active'], 'the capability turned active', ev);
    const cap = await client.accounts.retrieveCapability(acct.id, 'card_payments');
    checkEq(cap.status, 'active', 'retrieveCapability', cap);
    const login = await client.accounts.createLoginLink(acct.id);
    checkEq(login.object, 'login_link', 'a login link', login);
    const session = await client.accountSessions.create({ account: acct.id, components: { payouts: { enabled: true } } });
    checkEq([session.object, session.components.payouts.enabled], ['account_session', true], 'an account session', session);

    const url = new URL(client.oauth.authorizeUrl({ client_id: we.application, redirect_uri: 'https://platform.example/cb', state: 's1' }));
    checkEq([url.pathname, url.searchParams.get('client_id')], ['/oauth/authorize', we.application], 'authorizeUrl', url.href);
    const authorize = `${API_BASE}${url.pathname}${url.search}`;
    const shown = await browse(authorize);
    checkEq(shown.status, 200, 'the authorize page', shown.body.slice(0, 200));
    const approved = await browse(`${API_BASE}/oauth/authorize`, { ...formFields(shown.body), decision: 'approve' });
    const code = new URL(approved.location).searchParams.get('code');
    check(code && code.startsWith('ac_'), 'an authorization code', approved);
    const token = await client.oauth.token({ grant_type: 'authorization_code', code });
    check(token.stripe_user_id && token.stripe_user_id.startsWith('acct_'), 'stripe_user_id', token);
    await receiveVerified(client, path, { type: 'account.application.authorized', account: token.stripe_user_id }, we.secret,
      'account.application.authorized');
    const e = await expectError(errors.StripeInvalidGrantError,
      () => client.oauth.token({ grant_type: 'authorization_code', code }), 'a used code');
    checkEq(e.type, 'StripeInvalidGrantError', 'invalid_grant', errorSummary(e));
  } finally {
    await deleteEndpointsQuietly(client, endpoints);
  }
}

// API v2: a thin event destination from @accounts; a connected account's
// customer arrives as a v2.core.event notification, parsed with
// parseEventNotification, its event and related object fetched with the
// account's Stripe-Context; destinations list, update, disable, delete.
async function test_v2_thin_event_destination() {
  const client = newClient();
  const path = `/${unique('v2-thin')}`;
  const ed = await client.v2.core.eventDestinations.create({
    name: unique('dest'),
    type: 'webhook_endpoint',
    event_payload: 'thin',
    enabled_events: ['v1.customer.created'],
    events_from: ['@accounts'],
    webhook_endpoint: { url: RECEIVER.url(path) },
    include: ['webhook_endpoint.signing_secret'],
  });
  try {
    check(ed.id.startsWith('ed_'), 'destination id', ed);
    checkEq(ed.object, 'v2.core.event_destination', 'object', ed);
    checkEq(ed.event_payload, 'thin', 'event_payload', ed);
    check(ed.webhook_endpoint.signing_secret.startsWith('whsec_'), 'create includes the secret', ed);
    const acct = await client.accounts.create({ type: 'custom', country: 'US' });
    const cus = await client.customers.create({ name: 'Thin Node' }, { stripeAccount: acct.id });
    const found = await RECEIVER.waitFor(
      (d) => d.path === path && d.json.type === 'v1.customer.created' && d.json.related_object?.id === cus.id,
    );
    check(found.length, 'thin delivery of v1.customer.created', RECEIVER.describe(path));
    const d = found[0];
    const notif = client.parseEventNotification(d.body, d.headers['stripe-signature'],
      ed.webhook_endpoint.signing_secret);
    checkEq(notif.type, 'v1.customer.created', 'notification type', notif);
    checkEq(String(notif.context), acct.id, 'notification context', notif);
    check(!('data' in d.json), 'thin payloads carry no data', d.json);
    const event = await notif.fetchEvent();
    checkEq(event.id, notif.id, 'fetched event', event);
    checkEq(event.related_object.url, `/v1/customers/${cus.id}`, 'related_object.url', event);
    const related = await notif.fetchRelatedObject();
    checkEq(related.id, cus.id, 'related object', related);
    checkEq(related.name, 'Thin Node', 'related object as the account sees it', related);

    const listed = [];
    for await (const x of client.v2.core.eventDestinations.list({ limit: 1 })) listed.push(x.id);
    check(listed.includes(ed.id), 'auto-paging lists the destination', listed);
    const upd = await client.v2.core.eventDestinations.update(ed.id, { description: 'renamed' });
    checkEq(upd.description, 'renamed', 'update', upd);
    const off = await client.v2.core.eventDestinations.disable(ed.id);
    checkEq(off.status, 'disabled', 'disable', off);
    const e = await expectError(errors.StripeInvalidRequestError,
      () => client.v2.core.eventDestinations.create({ name: 'x', type: 'webhook_endpoint', event_payload: 'thin',
        enabled_events: ['customer.created'], webhook_endpoint: { url: RECEIVER.url('/x') } }),
      'a thin destination naming a snapshot type');
    checkEq(e.statusCode, 400, 'bad enabled_events: statusCode', errorSummary(e));
    checkEq(e.param, 'enabled_events', 'bad enabled_events: param', errorSummary(e));
  } finally {
    await client.v2.core.eventDestinations.del(ed.id);
  }
}

// Accounts v2: an @self thin destination hears a v2 account's life
// (created, updated with changes, a person, closed); the notifications'
// related objects fetch as v2 Accounts and AccountPersons.
async function test_v2_accounts_thin_events() {
  const client = newClient();
  const path = `/${unique('v2-accounts')}`;
  const ed = await client.v2.core.eventDestinations.create({
    name: unique('dest'),
    type: 'webhook_endpoint',
    event_payload: 'thin',
    enabled_events: ['v2.core.account.created', 'v2.core.account.updated', 'v2.core.account.closed',
      'v2.core.account_person.created'],
    events_from: ['@self'],
    webhook_endpoint: { url: RECEIVER.url(path) },
    include: ['webhook_endpoint.signing_secret'],
  });
  const secret = ed.webhook_endpoint.signing_secret;
  const notification = async (type, id) => {
    const found = await RECEIVER.waitFor(
      (d) => d.path === path && d.json.type === type && d.json.related_object?.id === id,
    );
    check(found.length, `${type} delivered`, RECEIVER.describe(path));
    const d = found[found.length - 1];
    check(!('data' in d.json) && !('context' in d.json), 'a thin @self payload', d.json);
    return client.parseEventNotification(d.body, d.headers['stripe-signature'], secret);
  };
  try {
    const acct = await client.v2.core.accounts.create({
      display_name: 'Node Shop',
      contact_email: 'node@example.com',
      identity: { country: 'us', entity_type: 'company' },
      configuration: { merchant: { capabilities: { card_payments: { requested: true } } } },
      include: ['identity', 'configuration.merchant'],
    });
    checkEq(acct.object, 'v2.core.account', 'object', acct);
    checkEq(acct.identity.country, 'US', 'identity.country', acct);
    checkEq(acct.applied_configurations, ['merchant'], 'applied_configurations', acct);
    let notif = await notification('v2.core.account.created', acct.id);
    const related = await notif.fetchRelatedObject();
    checkEq(related.object, 'v2.core.account', 'fetchRelatedObject: a v2 account', related);
    checkEq(related.id, acct.id, 'the related account', related);

    await client.v2.core.accounts.update(acct.id, { display_name: 'Node Bakery' });
    notif = await notification('v2.core.account.updated', acct.id);
    const updated = await notif.fetchEvent();
    checkEq(updated.changes.before.display_name, 'Node Shop', 'changes.before', updated.changes);
    checkEq(updated.changes.after.display_name, 'Node Bakery', 'changes.after', updated.changes);

    const person = await client.v2.core.accounts.persons.create(acct.id, { given_name: 'Ada', surname: 'Node' });
    checkEq(person.object, 'v2.core.account_person', 'a v2 person', person);
    notif = await notification('v2.core.account_person.created', person.id);
    const fetched = await notif.fetchRelatedObject();
    checkEq(fetched.given_name, 'Ada', 'the person through fetchRelatedObject', fetched);

    const cus = await client.customers.create({ name: 'Buyer' }, { stripeAccount: acct.id });
    check(cus.id.startsWith('cus_'), 'a v2 account is a v1 connected account', cus);
    const closed = await client.v2.core.accounts.close(acct.id);
    checkEq(closed.closed, true, 'closed', closed);
    await notification('v2.core.account.closed', acct.id);
    const e = await expectError(errors.StripePermissionError,
      () => client.customers.list({}, { stripeAccount: acct.id }), 'Stripe-Account of a closed account');
    checkEq(e.statusCode, 403, 'closed: statusCode', errorSummary(e));
    const bad = await expectError(errors.StripeInvalidRequestError,
      () => client.v2.core.accounts.create({ dashboard: 'bogus' }), 'a bad dashboard');
    checkEq([bad.statusCode, bad.param], [400, 'dashboard'], 'bad input: 400 naming it', errorSummary(bad));
  } finally {
    await client.v2.core.eventDestinations.del(ed.id);
  }
}

const TESTS = [
  test_rate_limit_error,
  test_webhook_endpoint_crud,
  test_webhook_endpoint_auto_paging,
  test_customers_and_events,
  test_idempotency,
  test_errors,
  test_webhook_delivery_verified,
  test_event_resend,
  test_connect_scoped_customers,
  test_connect_account_events,
  test_connect_money_events,
  test_connect_deauthorize,
  test_connect_event_resend,
  test_money_movement,
  test_onboarding_and_oauth,
  test_v2_thin_event_destination,
  test_v2_accounts_thin_events,
];

// ---------------------------------------------------------------------------

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CheckFailed(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  if (!API_BASE || !TEST_KEY || !API) {
    console.error('SWITCHBOARD_API_BASE (e.g. http://127.0.0.1:12111) and SWITCHBOARD_TEST_KEY must be set');
    return 2;
  }
  const selected = new Set(
    (process.env.SWITCHBOARD_TESTS || '').split(',').map((s) => s.trim()).filter(Boolean),
  );
  const tests = TESTS.filter((t) => !selected.size || selected.has(t.name));
  if (selected.size && tests.length !== selected.size) {
    const known = new Set(TESTS.map((t) => t.name));
    console.error(`unknown test(s): ${[...selected].filter((s) => !known.has(s)).join(', ')}`);
    return 2;
  }

  console.log(`stripe-node ${Stripe.PACKAGE_VERSION} (API version ${Stripe.API_VERSION}) against ${API_BASE}`);
  RECEIVER = new Receiver();
  await RECEIVER.start();
  const failed = [];
  try {
    for (const test of tests) {
      resetLog();
      const since = RECEIVER.deliveries.length;
      const started = Date.now();
      const secs = () => ((Date.now() - started) / 1000).toFixed(2);
      try {
        await withTimeout(test(), TEST_TIMEOUT_MS, test.name);
        console.log(`PASS ${test.name} (${secs()}s)`);
      } catch (e) {
        failed.push(test.name);
        const lines = [`FAIL ${test.name} (${secs()}s)`];
        if (e instanceof CheckFailed) {
          lines.push(`  ${e.message.replace(/\n/g, '\n  ')}`);
        } else {
          lines.push(`  unexpected ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
          if (e instanceof errors.StripeError) lines.push(`  ${dump(errorSummary(e)).replace(/\n/g, '\n  ')}`);
        }
        const frames = String(e && e.stack).split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 6);
        if (frames.length) lines.push(`  at:\n    ${frames.map((l) => l.trim()).join('\n    ')}`);
        lines.push('  HTTP exchanges during this test:');
        lines.push(formatExchanges(LOG.exchanges));
        lines.push("  SDK 'request'/'response' events during this test:");
        lines.push(formatSdkEvents(LOG.sdkEvents));
        lines.push('  webhook deliveries received during this test:');
        lines.push(RECEIVER.describe(null, since));
        console.log(lines.join('\n'));
      }
    }
  } finally {
    await RECEIVER.close();
  }
  console.log(`${tests.length - failed.length} passed, ${failed.length} failed`);
  if (failed.length) {
    console.log(`failed: ${failed.join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
