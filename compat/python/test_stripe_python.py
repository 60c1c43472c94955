#!/usr/bin/env python3
"""Compatibility tests: the official stripe-python SDK against Switchboard.

Configuration (environment):
  SWITCHBOARD_API_BASE  e.g. http://127.0.0.1:12111 (required)
  SWITCHBOARD_TEST_KEY  the server's test secret key, sk_test_... (required)
  SWITCHBOARD_TESTS     optional comma-separated subset of test names to run

This file also runs the Connect tests of test_connect.py (stripe_account,
Connect webhook endpoints, payments, payouts, OAuth deauthorization), which
reuse the helpers below: one command runs the whole suite.

Only the standard library and `stripe` (see ../requirements.txt) are used.
Every test prints PASS or FAIL; a failure prints the assertion, the HTTP
exchanges the SDK made during that test (request and response, API key
redacted) and, for webhook tests, what the local receiver got. The exit
status is non-zero when any test failed.
"""

import http.server
import json
import os
import sys
import threading
import time
import traceback
import uuid

import stripe

API_BASE = os.environ.get("SWITCHBOARD_API_BASE", "").rstrip("/")
TEST_KEY = os.environ.get("SWITCHBOARD_TEST_KEY", "")

WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
WEBHOOK_CONTENT_TYPE = "application/json; charset=utf-8"
DELIVERY_TIMEOUT = 10.0
# Event types no test ever triggers: endpoints that must not receive
# customer events (and so must not hold pending_webhooks up) listen to these.
QUIET_EVENTS = ["charge.succeeded", "invoice.paid"]


# ---------------------------------------------------------------------------
# Recording HTTP client: every request the SDK makes, and its response.


class _Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.exchanges = []

    def reset(self):
        with self.lock:
            self.exchanges = []

    def add(self, exchange):
        with self.lock:
            self.exchanges.append(exchange)

    def snapshot(self):
        with self.lock:
            return list(self.exchanges)


HTTP_LOG = _Log()


def _redact_headers(headers):
    out = {}
    for k, v in (headers or {}).items():
        if k.lower() == "authorization":
            v = v[:15] + "…(redacted)"
        out[k] = v
    return out


def _text(body, limit=4000):
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = str(body)
    if len(body) > limit:
        return body[:limit] + "…(%d more chars)" % (len(body) - limit)
    return body


class RecordingClient(stripe.RequestsClient):
    """The SDK's own requests-based client, logging each exchange."""

    def request(self, method, url, headers, post_data=None):
        ex = {
            "method": method.upper(),
            "url": url,
            "headers": _redact_headers(headers),
            "body": post_data,
        }
        try:
            rbody, rcode, rheaders = super().request(method, url, headers, post_data)
        except Exception as e:  # connection errors etc.
            ex["error"] = repr(e)
            HTTP_LOG.add(ex)
            raise
        ex["status"] = rcode
        ex["response_headers"] = dict(rheaders)
        ex["response_body"] = rbody
        HTTP_LOG.add(ex)
        return rbody, rcode, rheaders


def format_exchanges(exchanges, last=8):
    lines = []
    skipped = max(0, len(exchanges) - last)
    if skipped:
        lines.append("    (%d earlier exchange(s) omitted)" % skipped)
    for i, ex in enumerate(exchanges[skipped:], start=skipped + 1):
        lines.append("    --- exchange %d ---" % i)
        lines.append("    > %s %s" % (ex["method"], ex["url"]))
        for k, v in ex["headers"].items():
            lines.append("    > %s: %s" % (k, v))
        if ex.get("body"):
            lines.append("    > " + _text(ex["body"]))
        if "error" in ex:
            lines.append("    ! %s" % ex["error"])
            continue
        lines.append("    < HTTP %s" % ex["status"])
        for k, v in ex["response_headers"].items():
            lines.append("    < %s: %s" % (k, v))
        lines.append("    < " + _text(ex["response_body"]).replace("\n", "\n    < "))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Webhook receiver


class Receiver:
    """An HTTP server recording each POST (path, headers, raw body); answers 200."""

    def __init__(self):
        self.cond = threading.Condition()
        self.deliveries = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_POST(self):
                body = self._read_body()
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                delivery = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "json": parsed if isinstance(parsed, dict) else {},
                    "received_at": time.time(),
                }
                answer = b'{"received": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                with receiver.cond:
                    receiver.deliveries.append(delivery)
                    receiver.cond.notify_all()

            def log_message(self, fmt, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def wait_for(self, predicate, count=1, timeout=DELIVERY_TIMEOUT):
        """Deliveries matching `predicate`, once there are `count` (or [] on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [d for d in self.deliveries if predicate(d)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.cond.wait(remaining)

    def describe(self, path_prefix=None):
        with self.cond:
            ds = [d for d in self.deliveries if path_prefix is None or d["path"].startswith(path_prefix)]
        if not ds:
            return "    (receiver got no deliveries%s)" % (" on " + path_prefix if path_prefix else "")
        lines = []
        for i, d in enumerate(ds[-6:], start=1):
            lines.append("    --- delivery %d: POST %s ---" % (i, d["path"]))
            for k, v in d["headers"].items():
                lines.append("    > %s: %s" % (k, v))
            lines.append("    > " + _text(d["body"], 1500))
        return "\n".join(lines)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


RECEIVER = None  # started in main()


# ---------------------------------------------------------------------------
# Assertions


class CheckFailed(AssertionError):
    pass


def _dump(value):
    try:
        if isinstance(value, stripe.StripeObject):
            value = value.to_dict()
        return json.dumps(value, indent=2, sort_keys=True, default=str)
    except Exception:
        return repr(value)


def field(obj, key):
    """obj[key], or None when absent (StripeObject has no .get in v16)."""
    return obj[key] if key in obj else None


def check(cond, message, *context):
    if not cond:
        detail = "\n".join(_dump(c) for c in context)
        raise CheckFailed(message + ("\n" + detail if detail else ""))


def check_eq(actual, expected, what, *context):
    check(actual == expected, "%s: expected %r, got %r" % (what, expected, actual), *context)


def expect_error(exc_type, fn, what):
    """Runs fn, which must raise exc_type; returns the exception."""
    try:
        result = fn()
    except exc_type as e:
        return e
    except Exception as e:
        raise CheckFailed(
            "%s: expected %s, got %s: %s\n  http_status=%r http_body=%s"
            % (what, exc_type.__name__, type(e).__name__, e,
               getattr(e, "http_status", None), _text(getattr(e, "http_body", None)))
        )
    raise CheckFailed("%s: expected %s, but the call succeeded with:\n%s" % (what, exc_type.__name__, _dump(result)))


def error_summary(e):
    err = getattr(e, "error", None)
    return {
        "class": type(e).__name__,
        "http_status": getattr(e, "http_status", None),
        "code": getattr(e, "code", None),
        "param": getattr(err, "param", None) if err is not None else None,
        "type": getattr(err, "type", None) if err is not None else None,
        "message": getattr(e, "user_message", None),
        "http_body": _text(getattr(e, "http_body", None)),
    }


def poll(fn, until, timeout=DELIVERY_TIMEOUT, interval=0.1):
    """Calls fn until until(result) holds; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if until(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Helpers


def new_client(key=None):
    return stripe.StripeClient(
        key or TEST_KEY,
        base_addresses={"api": API_BASE, "connect": API_BASE},
        http_client=RecordingClient(timeout=30),
    )


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def delete_endpoints_quietly(client, ids):
    for we_id in ids:
        try:
            client.v1.webhook_endpoints.delete(we_id)
        except stripe.StripeError:
            pass


def find_events(client, event_type, object_id, params=None):
    """Every event of event_type whose data.object.id is object_id (auto-paging)."""
    p = {"type": event_type, "limit": 100}
    p.update(params or {})
    page = client.v1.events.list(params=p)
    return [e for e in page.auto_paging_iter() if field(e.data.object, "id") == object_id]


def delivery_for(path, event_type=None, object_id=None, event_id=None):
    def predicate(d):
        j = d["json"]
        if d["path"] != path:
            return False
        if event_id is not None and j.get("id") != event_id:
            return False
        if event_type is not None and j.get("type") != event_type:
            return False
        if object_id is not None and ((j.get("data") or {}).get("object") or {}).get("id") != object_id:
            return False
        return True

    return predicate


def verify_delivery(d, secret, what):
    """construct_event on the raw bytes and header; checks delivery headers."""
    sig = d["headers"].get("stripe-signature")
    check(sig, "%s: delivery has no Stripe-Signature header" % what, d["headers"])
    try:
        event = stripe.Webhook.construct_event(d["body"], sig, secret)
    except stripe.SignatureVerificationError as e:
        raise CheckFailed(
            "%s: stripe.Webhook.construct_event rejected the delivery: %s\n  Stripe-Signature: %s\n  body: %s"
            % (what, e, sig, _text(d["body"]))
        )
    check_eq(d["headers"].get("content-type"), WEBHOOK_CONTENT_TYPE, what + ": Content-Type", d["headers"])
    check_eq(d["headers"].get("user-agent"), WEBHOOK_USER_AGENT, what + ": User-Agent", d["headers"])
    return event


# ---------------------------------------------------------------------------
# Tests


def test_webhook_endpoint_crud():
    client = new_client()
    url = RECEIVER.url("/" + unique("crud"))
    we = client.v1.webhook_endpoints.create(
        params={
            "url": url,
            "enabled_events": QUIET_EVENTS,
            "description": "compat crud",
            "metadata": {"suite": "python"},
        }
    )
    try:
        check(isinstance(we, stripe.WebhookEndpoint), "create returns a WebhookEndpoint", type(we).__name__)
        check(we.id.startswith("we_"), "endpoint id starts with we_", we)
        check_eq(we.object, "webhook_endpoint", "object", we)
        check(isinstance(field(we, "secret"), str) and we.secret.startswith("whsec_"), "create returns secret whsec_...", we)
        check_eq(we.status, "enabled", "status after create", we)
        check_eq(list(we.enabled_events), QUIET_EVENTS, "enabled_events", we)
        check_eq(we.url, url, "url", we)
        check_eq(we.description, "compat crud", "description", we)
        check_eq(we.metadata.to_dict(), {"suite": "python"}, "metadata", we)
        check_eq(we.livemode, False, "livemode", we)

        got = client.v1.webhook_endpoints.retrieve(we.id)
        check_eq(got.id, we.id, "retrieve id", got)
        check("secret" not in got, "retrieve must not include secret", got)
        check_eq(got.status, "enabled", "retrieved status", got)
        check_eq(list(got.enabled_events), QUIET_EVENTS, "retrieved enabled_events", got)

        upd = client.v1.webhook_endpoints.update(
            we.id,
            params={"description": "updated by python", "disabled": True, "metadata": {"extra": "1"}},
        )
        check_eq(upd.description, "updated by python", "updated description", upd)
        check_eq(upd.status, "disabled", "status after disabled=True", upd)
        check_eq(upd.metadata.to_dict(), {"suite": "python", "extra": "1"}, "merged metadata", upd)
        check("secret" not in upd, "update must not include secret", upd)

        got = client.v1.webhook_endpoints.retrieve(we.id)
        check_eq(got.status, "disabled", "retrieved status after update", got)

        upd = client.v1.webhook_endpoints.update(we.id, params={"disabled": False, "metadata": {"extra": ""}})
        check_eq(upd.status, "enabled", "status after disabled=False", upd)
        check_eq(upd.metadata.to_dict(), {"suite": "python"}, "metadata key removed by empty string", upd)

        listed = client.v1.webhook_endpoints.list(params={"limit": 100})
        check(isinstance(listed, stripe.ListObject), "list returns a ListObject", type(listed).__name__)
        check_eq(listed.object, "list", "list object", listed)
        matches = [e for e in listed.auto_paging_iter() if e.id == we.id]
        check_eq(len(matches), 1, "endpoint appears once in list", listed)
        check("secret" not in matches[0], "list must not include secret", matches[0])

        deleted = client.v1.webhook_endpoints.delete(we.id)
        check_eq(deleted.id, we.id, "deleted id", deleted)
        check_eq(field(deleted, "deleted"), True, "deleted flag", deleted)
    except Exception:
        delete_endpoints_quietly(client, [we.id])
        raise

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.webhook_endpoints.retrieve(we.id),
        "retrieve after delete",
    )
    check_eq(e.http_status, 404, "http_status after delete", error_summary(e))
    check_eq(e.code, "resource_missing", "error code after delete", error_summary(e))
    check_eq(e.error.param, "id", "error param after delete", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.webhook_endpoints.delete(we.id),
        "delete twice",
    )
    check_eq(e.http_status, 404, "http_status of second delete", error_summary(e))


def test_webhook_endpoint_auto_paging():
    client = new_client()
    created = []
    try:
        for i in range(13):
            we = client.v1.webhook_endpoints.create(
                params={"url": RECEIVER.url("/" + unique("page%d" % i)), "enabled_events": QUIET_EVENTS}
            )
            created.append(we.id)
        HTTP_LOG.reset()
        first = client.v1.webhook_endpoints.list(params={"limit": 3})
        check(len(first.data) <= 3, "a limit=3 page has at most 3 items", first)
        check_eq(first.has_more, True, "first page has_more", first)
        seen = [e.id for e in first.auto_paging_iter()]
        dupes = sorted({i for i in seen if seen.count(i) > 1})
        check(not dupes, "auto_paging_iter yielded duplicates: %s" % dupes, seen)
        for we_id in created:
            check_eq(seen.count(we_id), 1, "times %s was yielded" % we_id, {"seen": seen, "created": created})
        gets = [ex for ex in HTTP_LOG.snapshot() if ex["method"] == "GET"]
        check(len(gets) >= 5, "auto-paging 13+ endpoints with limit=3 takes at least 5 requests", len(gets))
        for ex in gets:
            check("limit=3" in ex["url"], "every page request keeps limit=3", ex["url"])
            body = json.loads(ex["response_body"])
            check(len(body["data"]) <= 3, "page size <= 3", body)
        # Pages are in Stripe order: newest first, ties broken consistently.
        order = [i for i in seen if i in created]
        check_eq(order, list(reversed(created)), "newest-first order of created endpoints", seen)

        # And backwards: ending_before from the oldest one walks back towards the newest.
        back = client.v1.webhook_endpoints.list(params={"limit": 3, "ending_before": created[0]})
        back_ids = [e.id for e in back.auto_paging_iter()]
        check_eq(
            [i for i in back_ids if i in created],
            created[1:],
            "ending_before auto-paging yields the newer endpoints oldest-first",
            back_ids,
        )
    finally:
        delete_endpoints_quietly(client, created)


def test_customers_crud_and_events():
    client = new_client()
    t0 = int(time.time()) - 1
    cus = client.v1.customers.create(
        params={
            "name": "Ada",
            "email": "ada@example.com",
            "description": "compat",
            "phone": "+15555550100",
            "address": {"line1": "1 Main St", "city": "London", "country": "GB"},
            "preferred_locales": ["en", "fr"],
            "metadata": {"suite": "python"},
        }
    )
    check(isinstance(cus, stripe.Customer), "create returns a Customer", type(cus).__name__)
    check(cus.id.startswith("cus_"), "customer id prefix", cus)
    check_eq(cus.object, "customer", "object", cus)
    check_eq(cus.name, "Ada", "name", cus)
    check_eq(cus.email, "ada@example.com", "email", cus)
    check_eq(cus.address.city, "London", "address.city", cus)
    check_eq(field(cus.address, "line2"), None, "address.line2", cus)
    check_eq(list(cus.preferred_locales), ["en", "fr"], "preferred_locales", cus)
    check_eq(cus.metadata.to_dict(), {"suite": "python"}, "metadata", cus)
    check_eq(cus.balance, 0, "balance", cus)

    got = client.v1.customers.retrieve(cus.id)
    check_eq(got.to_dict(), cus.to_dict(), "retrieve equals create response", got, cus)

    upd = client.v1.customers.update(cus.id, params={"name": "Ada Lovelace", "email": "ada@lovelace.example"})
    check_eq(upd.name, "Ada Lovelace", "updated name", upd)
    check_eq(upd.email, "ada@lovelace.example", "updated email", upd)
    check_eq(upd.description, "compat", "unchanged description", upd)

    listed = client.v1.customers.list(params={"limit": 100})
    check_eq(len([c for c in listed.auto_paging_iter() if c.id == cus.id]), 1, "customer listed once", listed)

    created_events = find_events(client, "customer.created", cus.id)
    check_eq(len(created_events), 1, "customer.created events for %s" % cus.id, created_events)
    ev = created_events[0]
    check(isinstance(ev, stripe.Event), "events are Event objects", type(ev).__name__)
    check(ev.id.startswith("evt_"), "event id prefix", ev)
    check_eq(ev.object, "event", "event object", ev)
    check(isinstance(ev.data.object, stripe.Customer), "data.object is a Customer", type(ev.data.object).__name__)
    check_eq(ev.data.object.name, "Ada", "customer.created carries the created state", ev)
    check(ev.created >= t0, "event created timestamp", ev)
    check(isinstance(field(ev, "api_version"), str), "event api_version", ev)

    updated_events = find_events(client, "customer.updated", cus.id)
    check_eq(len(updated_events), 1, "customer.updated events for %s" % cus.id, updated_events)
    ev = updated_events[0]
    check_eq(ev.data.object.name, "Ada Lovelace", "customer.updated carries the new state", ev)
    check("previous_attributes" in ev.data, "customer.updated has data.previous_attributes", ev)
    check_eq(
        ev.data.previous_attributes.to_dict(),
        {"name": "Ada", "email": "ada@example.com"},
        "previous_attributes",
        ev,
    )

    # Metadata added in an update: Stripe shows the new key as previously null.
    client.v1.customers.update(cus.id, params={"metadata": {"tier": "gold"}})
    updated_events = find_events(client, "customer.updated", cus.id)
    check_eq(len(updated_events), 2, "customer.updated events after metadata update", updated_events)
    check_eq(
        updated_events[0].data.previous_attributes.to_dict(),
        {"metadata": {"tier": None}},
        "previous_attributes of a metadata addition (newest event first)",
        updated_events[0],
    )

    # types[] and created[gte] filters.
    both = client.v1.events.list(
        params={"types": ["customer.created", "customer.updated"], "created": {"gte": t0}, "limit": 100}
    )
    mine = [e for e in both.auto_paging_iter() if field(e.data.object, "id") == cus.id]
    check_eq(sorted(e.type for e in mine), ["customer.created", "customer.updated", "customer.updated"],
             "types[] filter", [e.id for e in mine])
    future = client.v1.events.list(params={"created": {"gt": int(time.time()) + 3600}})
    check_eq(len(future.data), 0, "created[gt]=future finds nothing", future)

    got_ev = client.v1.events.retrieve(ev.id)
    check_eq(got_ev.id, ev.id, "events.retrieve id", got_ev)
    check_eq(got_ev.type, "customer.updated", "events.retrieve type", got_ev)

    deleted = client.v1.customers.delete(cus.id)
    check_eq(deleted.id, cus.id, "deleted id", deleted)
    check_eq(field(deleted, "deleted"), True, "deleted flag", deleted)
    deleted_events = find_events(client, "customer.deleted", cus.id)
    check_eq(len(deleted_events), 1, "customer.deleted events", deleted_events)

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.customers.update(cus.id, params={"name": "ghost"}),
        "update a deleted customer",
    )
    check_eq(e.http_status, 404, "update deleted: http_status", error_summary(e))
    check_eq(e.code, "resource_missing", "update deleted: code", error_summary(e))


def test_idempotency():
    client = new_client()
    key = unique("idem")
    params = {"name": "Idem", "email": "idem@example.com"}
    first = client.v1.customers.create(params=dict(params), options={"idempotency_key": key})
    HTTP_LOG.reset()
    second = client.v1.customers.create(params=dict(params), options={"idempotency_key": key})
    check_eq(second.id, first.id, "same idempotency key replays the same customer", first, second)
    check_eq(second.to_dict(), first.to_dict(), "replayed body equals the original", first, second)
    last = HTTP_LOG.snapshot()[-1]
    check_eq(last["headers"].get("Idempotency-Key"), key, "SDK sent our Idempotency-Key", last["headers"])
    replayed = {k.lower(): v for k, v in last["response_headers"].items()}.get("idempotent-replayed")
    check_eq(replayed, "true", "Idempotent-Replayed response header", last["response_headers"])

    events = find_events(client, "customer.created", first.id)
    check_eq(len(events), 1, "one customer.created event for the replayed create", [e.id for e in events])

    e = expect_error(
        stripe.IdempotencyError,
        lambda: client.v1.customers.create(params={"name": "Different"}, options={"idempotency_key": key}),
        "same idempotency key with different params",
    )
    check_eq(e.http_status, 400, "IdempotencyError http_status", error_summary(e))
    check_eq(e.error.type, "idempotency_error", "error type", error_summary(e))

    # Still exactly one customer behind the key.
    events = find_events(client, "customer.created", first.id)
    check_eq(len(events), 1, "still one customer.created event", [e.id for e in events])


def test_errors():
    client = new_client()

    bad = new_client("sk_test_" + "x" * 24)
    e = expect_error(stripe.AuthenticationError, lambda: bad.v1.customers.list(), "bad API key")
    check_eq(e.http_status, 401, "bad key http_status", error_summary(e))
    check("Invalid API Key" in (e.user_message or ""), "bad key message mentions Invalid API Key", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.customers.create(params={"name": "x", "nonexistent_param": "1"}),
        "unknown parameter",
    )
    check_eq(e.http_status, 400, "unknown param http_status", error_summary(e))
    check_eq(e.error.param, "nonexistent_param", "unknown param name", error_summary(e))
    check_eq(e.code, "parameter_unknown", "unknown param code", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.webhook_endpoints.create(params={"enabled_events": ["*"]}),
        "endpoint create without url",
    )
    check_eq(e.http_status, 400, "missing url http_status", error_summary(e))
    check_eq(e.error.param, "url", "missing url param", error_summary(e))
    check_eq(e.code, "parameter_missing", "missing url code", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.webhook_endpoints.create(
            params={"url": RECEIVER.url("/never"), "enabled_events": ["customer.exploded"]}
        ),
        "invalid enabled_events",
    )
    check_eq(e.http_status, 400, "invalid enabled_events http_status", error_summary(e))
    check_eq(e.error.param, "enabled_events", "invalid enabled_events param", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.customers.retrieve("cus_doesnotexist000000"),
        "unknown customer",
    )
    check_eq(e.http_status, 404, "unknown customer http_status", error_summary(e))
    check_eq(e.code, "resource_missing", "unknown customer code", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.events.retrieve("evt_doesnotexist000000"),
        "unknown event",
    )
    check_eq(e.http_status, 404, "unknown event http_status", error_summary(e))

    e = expect_error(
        stripe.InvalidRequestError,
        lambda: client.v1.customers.list(params={"limit": 1000}),
        "limit out of range",
    )
    check_eq(e.error.param, "limit", "bad limit param", error_summary(e))

    # Every error carries a Request-Id the SDK exposes.
    check(isinstance(e.request_id, str) and e.request_id.startswith("req_"), "error request_id", error_summary(e),
          getattr(e, "headers", None))


def test_webhook_delivery_verified():
    client = new_client()
    path = "/" + unique("delivery")
    we = client.v1.webhook_endpoints.create(params={"url": RECEIVER.url(path), "enabled_events": ["*"]})
    try:
        secret = we.secret
        cus = client.v1.customers.create(params={"name": "Webhook Target", "email": "hook@example.com"})
        found = RECEIVER.wait_for(delivery_for(path, "customer.created", cus.id))
        check(found, "customer.created for %s delivered to %s within %ss" % (cus.id, path, DELIVERY_TIMEOUT),
              RECEIVER.describe(path))
        d = found[0]
        event = verify_delivery(d, secret, "customer.created delivery")
        check(isinstance(event, stripe.Event), "construct_event returns an Event", type(event).__name__)
        check_eq(event.type, "customer.created", "delivered event type", event)
        check_eq(event.data.object.id, cus.id, "delivered data.object.id", event)
        check(isinstance(event.data.object, stripe.Customer), "delivered data.object is a Customer",
              type(event.data.object).__name__)
        check_eq(event.data.object.email, "hook@example.com", "delivered customer email", event)
        check(event.pending_webhooks >= 1, "delivered payload's pending_webhooks counts this endpoint", event)

        # A wrong secret must be rejected by the SDK.
        try:
            stripe.Webhook.construct_event(d["body"], d["headers"]["stripe-signature"], "whsec_wrong")
            raise CheckFailed("construct_event accepted a wrong secret")
        except stripe.SignatureVerificationError:
            pass

        api_event = client.v1.events.retrieve(event.id)
        check_eq(api_event.type, "customer.created", "API event type", api_event)
        check_eq(api_event.data.object.id, cus.id, "API event object", api_event)
        settled = poll(lambda: client.v1.events.retrieve(event.id), lambda e: e.pending_webhooks == 0)
        check_eq(settled.pending_webhooks, 0, "pending_webhooks after successful delivery", settled)

        # delivery_success=true now finds it.
        ok = client.v1.events.list(params={"delivery_success": True, "type": "customer.created", "limit": 100})
        check(any(e.id == event.id for e in ok.auto_paging_iter()), "delivery_success=true lists the event", ok)

        # Exactly one delivery of that event to this endpoint.
        check_eq(len(RECEIVER.wait_for(delivery_for(path, event_id=event.id), timeout=0)), 1,
                 "deliveries of %s" % event.id, RECEIVER.describe(path))
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_event_resend():
    client = new_client()
    path = "/" + unique("resend")
    we = client.v1.webhook_endpoints.create(
        params={"url": RECEIVER.url(path), "enabled_events": ["customer.created"]}
    )
    try:
        secret = we.secret
        cus = client.v1.customers.create(params={"name": "Resend Target"})
        found = RECEIVER.wait_for(delivery_for(path, "customer.created", cus.id))
        check(found, "first delivery within %ss" % DELIVERY_TIMEOUT, RECEIVER.describe(path))
        first = verify_delivery(found[0], secret, "first delivery")
        settled = poll(lambda: client.v1.events.retrieve(first.id), lambda e: e.pending_webhooks == 0)
        check_eq(settled.pending_webhooks, 0, "pending_webhooks before resend", settled)

        raw = client.raw_request("post", "/v1/events/%s/retry" % first.id, webhook_endpoint=we.id)
        check_eq(raw.code, 200, "retry HTTP status", raw.body)
        resp = client.deserialize(raw, api_mode="V1")
        check(isinstance(resp, stripe.Event), "retry response deserializes to an Event", type(resp).__name__, raw.body)
        check_eq(resp.id, first.id, "retry answers with the event", resp)

        again = RECEIVER.wait_for(delivery_for(path, event_id=first.id), count=2)
        check(again, "resent delivery of %s within %ss" % (first.id, DELIVERY_TIMEOUT), RECEIVER.describe(path))
        resent = verify_delivery(again[1], secret, "resent delivery")
        check_eq(resent.id, first.id, "resent event id", resent)
        check_eq(resent.type, "customer.created", "resent event type", resent)
        check_eq(resent.data.object.id, cus.id, "resent data.object.id", resent)

        # Retry without webhook_endpoint, and with an unknown endpoint, are errors.
        e = expect_error(
            stripe.InvalidRequestError,
            lambda: client.raw_request("post", "/v1/events/%s/retry" % first.id),
            "retry without webhook_endpoint",
        )
        check_eq(e.error.param, "webhook_endpoint", "retry without endpoint: param", error_summary(e))
        e = expect_error(
            stripe.InvalidRequestError,
            lambda: client.raw_request("post", "/v1/events/%s/retry" % first.id, webhook_endpoint="we_nope00000000"),
            "retry to an unknown endpoint",
        )
        check_eq(e.http_status, 404, "retry to unknown endpoint: http_status", error_summary(e))
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_legacy_global_api():
    saved = (stripe.api_key, stripe.api_base, stripe.default_http_client)
    stripe.api_key = TEST_KEY
    stripe.api_base = API_BASE
    stripe.default_http_client = RecordingClient(timeout=30)
    we_id = None
    try:
        path = "/" + unique("legacy")
        we = stripe.WebhookEndpoint.create(url=RECEIVER.url(path), enabled_events=["customer.created"])
        we_id = we.id
        check(we.secret.startswith("whsec_"), "legacy create secret", we)
        check_eq(we.status, "enabled", "legacy status", we)
        got = stripe.WebhookEndpoint.retrieve(we.id)
        check("secret" not in got, "legacy retrieve has no secret", got)
        mod = stripe.WebhookEndpoint.modify(we.id, description="legacy")
        check_eq(mod.description, "legacy", "legacy modify", mod)
        check(any(e.id == we.id for e in stripe.WebhookEndpoint.list(limit=2).auto_paging_iter()),
              "legacy list auto-paging finds the endpoint")

        cus = stripe.Customer.create(name="Legacy", email="legacy@example.com", metadata={"style": "global"})
        check(cus.id.startswith("cus_"), "legacy customer id", cus)
        cus2 = stripe.Customer.modify(cus.id, name="Legacy 2")
        check_eq(cus2.name, "Legacy 2", "legacy modify customer", cus2)
        fetched = stripe.Customer.retrieve(cus.id)
        check_eq(fetched.name, "Legacy 2", "legacy retrieve customer", fetched)
        fetched = stripe.Customer.modify(cus.id, email="changed@example.com")
        check_eq(fetched.email, "changed@example.com", "legacy second modify", fetched)

        deliveries = RECEIVER.wait_for(delivery_for(path, "customer.created", cus.id))
        check(deliveries, "legacy endpoint got customer.created", RECEIVER.describe(path))
        event = stripe.Webhook.construct_event(
            deliveries[0]["body"], deliveries[0]["headers"].get("stripe-signature"), we.secret
        )
        check_eq(event.data.object.id, cus.id, "legacy construct_event object", event)

        evs = stripe.Event.list(type="customer.updated", limit=100)
        mine = [e for e in evs.auto_paging_iter() if e.data.object.id == cus.id]
        check_eq(len(mine), 2, "legacy Event.list customer.updated", [e.id for e in mine])
        ev = stripe.Event.retrieve(mine[0].id)
        check_eq(ev.id, mine[0].id, "legacy Event.retrieve", ev)

        d = stripe.Customer.delete(cus.id)
        check_eq(field(d, "deleted"), True, "legacy Customer.delete", d)
        d = stripe.WebhookEndpoint.delete(we.id)
        check_eq(field(d, "deleted"), True, "legacy WebhookEndpoint.delete", d)
        we_id = None
        e = expect_error(stripe.InvalidRequestError, lambda: stripe.WebhookEndpoint.retrieve(we.id),
                         "legacy retrieve deleted endpoint")
        check_eq(e.http_status, 404, "legacy 404", error_summary(e))
        check_eq(e.code, "resource_missing", "legacy resource_missing", error_summary(e))

        stripe.api_key = "sk_test_" + "y" * 24
        e = expect_error(stripe.AuthenticationError, lambda: stripe.Customer.list(), "legacy bad key")
        check_eq(e.http_status, 401, "legacy bad key http_status", error_summary(e))
    finally:
        stripe.api_key = TEST_KEY
        if we_id:
            try:
                stripe.WebhookEndpoint.delete(we_id)
            except stripe.StripeError:
                pass
        stripe.api_key, stripe.api_base, stripe.default_http_client = saved


# The Connect tests import this module's helpers; when this file runs as a
# script, make `import test_stripe_python` find this very module (and so the
# RECEIVER main() starts) rather than loading a second copy.
sys.modules.setdefault("test_stripe_python", sys.modules[__name__])
sys.dont_write_bytecode = True  # no __pycache__ next to the sources
def test_rate_limit_error():
    """A server started with --rate-limit answers Stripe's 429, raised as RateLimitError."""
    base = os.environ.get("SWITCHBOARD_RATE_LIMITED_API_BASE", "").rstrip("/")
    check(base, "SWITCHBOARD_RATE_LIMITED_API_BASE is not set (a server with --rate-limit 1)")
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": base}, max_network_retries=0,
                                 http_client=RecordingClient(timeout=30))

    def burst():
        for _ in range(5):
            client.v1.customers.list(params={"limit": 1})

    e = expect_error(stripe.RateLimitError, burst, "five requests a second at --rate-limit 1")
    check_eq(e.http_status, 429, "RateLimitError.http_status", error_summary(e))
    # stripe-python builds RateLimitError without `code`; the body carries it.
    check_eq(e.json_body["error"]["code"], "rate_limit", "429 body error.code", error_summary(e))


import test_connect  # noqa: E402
import test_money  # noqa: E402
import test_v2  # noqa: E402
import test_v2_accounts  # noqa: E402

TESTS = [
    test_rate_limit_error,
    test_webhook_endpoint_crud,
    test_webhook_endpoint_auto_paging,
    test_customers_crud_and_events,
    test_idempotency,
    test_errors,
    test_webhook_delivery_verified,
    test_event_resend,
    test_legacy_global_api,
] + test_connect.TESTS + test_money.TESTS + test_v2.TESTS + test_v2_accounts.TESTS


def main(only=None):
    """Runs TESTS (or those named in `only`), filtered by SWITCHBOARD_TESTS."""
    global RECEIVER
    if not API_BASE or not TEST_KEY:
        print("SWITCHBOARD_API_BASE and SWITCHBOARD_TEST_KEY must be set", file=sys.stderr)
        return 2
    # Never talk to the real Stripe by accident, and never send telemetry.
    stripe.api_base = API_BASE
    stripe.enable_telemetry = False
    stripe.max_network_retries = 2
    selected = {s.strip() for s in os.environ.get("SWITCHBOARD_TESTS", "").split(",") if s.strip()}
    tests = [t for t in TESTS if (not selected or t.__name__ in selected) and (only is None or t.__name__ in only)]

    print("stripe-python %s against %s" % (stripe.VERSION, API_BASE), flush=True)
    RECEIVER = Receiver()
    failed = []
    try:
        for test in tests:
            HTTP_LOG.reset()
            started = time.monotonic()
            try:
                test()
            except Exception as e:
                failed.append(test.__name__)
                print("FAIL %s (%.2fs)" % (test.__name__, time.monotonic() - started), flush=True)
                if isinstance(e, CheckFailed):
                    print("  " + str(e).replace("\n", "\n  "))
                else:
                    print("  unexpected %s: %s" % (type(e).__name__, e))
                    if isinstance(e, stripe.StripeError):
                        print("  " + _dump(error_summary(e)).replace("\n", "\n  "))
                print("  traceback:\n    " + "".join(traceback.format_exc()).rstrip().replace("\n", "\n    "))
                print("  HTTP exchanges during this test:")
                print(format_exchanges(HTTP_LOG.snapshot()))
                sys.stdout.flush()
            else:
                print("PASS %s (%.2fs)" % (test.__name__, time.monotonic() - started), flush=True)
    finally:
        RECEIVER.close()

    print("%d passed, %d failed" % (len(tests) - len(failed), len(failed)))
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
