#!/usr/bin/env python3
"""API v2 compatibility tests: stripe-python's v2 client against Switchboard.

Run by test_stripe_python.py with its helpers and environment (one command
runs every file); running this file directly runs only these tests.

Event Destinations (`client.v2.core.event_destinations`): create with
`include`, retrieve, update, list with auto-paging over `next_page_url`,
enable / disable, delete; a snapshot destination from `@accounts` receives
a connected account's v1 events signed with its secret, one from `@self`
only the platform's; bad v2 input is the SDK's InvalidRequestError naming
the parameter. And `Stripe-Context` on v1 paths, as the v2 SDK sends it.
"""

import sys

import stripe

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
import test_stripe_python as sb  # noqa: E402
from test_stripe_python import (  # noqa: E402
    HTTP_LOG,
    check,
    check_eq,
    error_summary,
    expect_error,
    new_client,
    unique,
    verify_delivery,
)
from test_connect import connect_delivery  # noqa: E402


def destination(client, path, events_from, events=("customer.created",), **extra):
    params = {
        "name": unique("dest"),
        "type": "webhook_endpoint",
        "event_payload": "snapshot",
        "enabled_events": list(events),
        "events_from": events_from,
        "webhook_endpoint": {"url": sb.RECEIVER.url(path)},
        "include": ["webhook_endpoint.signing_secret", "webhook_endpoint.url"],
    }
    params.update(extra)
    return client.v2.core.event_destinations.create(params)


def delete_quietly(client, ids):
    for i in ids:
        try:
            client.v2.core.event_destinations.delete(i)
        except stripe.StripeError:
            pass


def test_v2_event_destination_crud():
    client = new_client()
    path = "/" + unique("v2-crud")
    HTTP_LOG.reset()
    ed = destination(client, path, ["@self"], description="first", metadata={"team": "payments"})
    sent = HTTP_LOG.snapshot()[-1]
    check_eq(sent["headers"].get("Content-Type"), "application/json", "v2 create is JSON", sent["headers"])
    check(sent["headers"].get("Idempotency-Key"), "the SDK keys v2 POSTs", sent["headers"])
    check(isinstance(ed, stripe.v2.core.EventDestination), "create returns an EventDestination", type(ed).__name__)
    check(ed.id.startswith("ed_"), "id prefix", ed)
    check_eq(ed.object, "v2.core.event_destination", "object", ed)
    check_eq(ed.status, "enabled", "status", ed)
    check_eq(ed.status_details, None, "status_details", ed)
    check_eq(ed.event_payload, "snapshot", "event_payload", ed)
    check_eq(ed.events_from, ["@self"], "events_from", ed)
    check_eq(ed.type, "webhook_endpoint", "type", ed)
    check_eq(ed.description, "first", "description", ed)
    check_eq(ed.metadata.to_dict(), {"team": "payments"}, "metadata", ed)
    check_eq(ed.snapshot_api_version, "2026-10-28.endive", "snapshot_api_version defaults to ours", ed)
    check(ed.webhook_endpoint.signing_secret.startswith("whsec_"), "create includes the signing secret", ed)
    check_eq(ed.webhook_endpoint.url, sb.RECEIVER.url(path), "create includes the url", ed)
    for stamp in (ed.created, ed.updated):
        check(isinstance(stamp, str) and stamp.endswith("Z") and "T" in stamp and "." in stamp,
              "RFC 3339 timestamps with milliseconds", ed)

    got = client.v2.core.event_destinations.retrieve(ed.id)
    check_eq(got.webhook_endpoint.signing_secret, None, "the secret is shown at creation only", got)
    check_eq(got.webhook_endpoint.url, None, "the url only when included", got)
    got = client.v2.core.event_destinations.retrieve(ed.id, {"include": ["webhook_endpoint.url"]})
    check_eq(got.webhook_endpoint.url, sb.RECEIVER.url(path), "retrieve with include", got)

    upd = client.v2.core.event_destinations.update(
        ed.id, {"name": "renamed", "description": "second", "metadata": {"team": None, "tier": "gold"},
                "enabled_events": ["customer.created", "customer.updated"]})
    check_eq(upd.name, "renamed", "updated name", upd)
    check_eq(upd.description, "second", "updated description", upd)
    check_eq(upd.metadata.to_dict(), {"tier": "gold"}, "a null metadata value removes the key", upd)
    check_eq(upd.enabled_events, ["customer.created", "customer.updated"], "updated enabled_events", upd)
    check(upd.updated >= upd.created, "updated moves", upd)

    off = client.v2.core.event_destinations.disable(ed.id)
    check_eq(off.status, "disabled", "disable", off)
    check_eq(off.status_details.disabled.reason, "user", "disabled by the user", off)
    on = client.v2.core.event_destinations.enable(ed.id)
    check_eq((on.status, on.status_details), ("enabled", None), "enable", on)

    # Not a v1 webhook endpoint.
    expect_error(stripe.InvalidRequestError, lambda: client.v1.webhook_endpoints.retrieve(ed.id),
                 "a destination through /v1/webhook_endpoints")
    HTTP_LOG.reset()
    deleted = client.v2.core.event_destinations.delete(ed.id)
    sent = HTTP_LOG.snapshot()[-1]
    check(sent["headers"].get("Idempotency-Key"), "the SDK keys v2 DELETEs", sent["headers"])
    check_eq(deleted.id, ed.id, "delete answers the id", deleted)
    e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.event_destinations.retrieve(ed.id),
                     "a deleted destination")
    check_eq(e.http_status, 404, "deleted destination: http_status", error_summary(e))


def test_v2_event_destination_list_pages():
    client = new_client()
    made = [destination(client, "/" + unique("v2-page"), ["@self"]).id for _ in range(5)]
    try:
        page = client.v2.core.event_destinations.list({"limit": 2})
        check_eq(len(page.data), 2, "a page of two", page)
        check(page.next_page_url and page.next_page_url.startswith("/v2/core/event_destinations?"),
              "next_page_url is a path", page)
        seen = [d.id for d in client.v2.core.event_destinations.list({"limit": 2}).auto_paging_iter()]
        check(all(m in seen for m in made), "auto-paging over next_page_url reaches every destination", seen)
        check_eq(len(seen), len(set(seen)), "no destination twice", seen)
        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v2.core.event_destinations.list({"limit": 500}), "limit 500")
        check_eq(e.param, "limit", "limit: param", error_summary(e))
    finally:
        for i in made:
            client.v2.core.event_destinations.delete(i)


def test_v2_snapshot_destinations_route_by_events_from():
    client = new_client()
    own_path, accounts_path = "/" + unique("v2-self"), "/" + unique("v2-accounts")
    own = destination(client, own_path, ["@self"])
    accounts = destination(client, accounts_path, ["@accounts"])
    try:
        acct = client.v1.accounts.create(params={"type": "custom", "country": "US",
                                                 "capabilities": {"transfers": {"requested": True}}})
        theirs = client.v1.customers.create(params={"name": "Connected"}, options={"stripe_account": acct.id})
        mine = client.v1.customers.create(params={"name": "Platform"})
        found = sb.RECEIVER.wait_for(connect_delivery(accounts_path, "customer.created", acct.id, theirs.id))
        check(found, "@accounts destination got the connected account's event", sb.RECEIVER.describe(accounts_path))
        event = verify_delivery(found[0], accounts.webhook_endpoint.signing_secret, "@accounts snapshot")
        check_eq(event.account, acct.id, "snapshot events carry the account", event)
        mine_found = sb.RECEIVER.wait_for(sb.delivery_for(own_path, "customer.created", mine.id))
        check(mine_found, "@self destination got the platform's event", sb.RECEIVER.describe(own_path))
        verify_delivery(mine_found[0], own.webhook_endpoint.signing_secret, "@self snapshot")
        check(not sb.RECEIVER.wait_for(sb.delivery_for(own_path, object_id=theirs.id), timeout=0),
              "@self destination got a connected account's event", sb.RECEIVER.describe(own_path))
        check(not sb.RECEIVER.wait_for(sb.delivery_for(accounts_path, object_id=mine.id), timeout=0),
              "@accounts destination got the platform's event", sb.RECEIVER.describe(accounts_path))
        # Stripe-Context reaches the connected account's object, as fetch_related_object does.
        HTTP_LOG.reset()
        got = client.with_stripe_context(acct.id).v1.customers.retrieve(theirs.id)
        sent = HTTP_LOG.snapshot()[-1]
        check_eq(sent["headers"].get("Stripe-Context"), acct.id, "the SDK sent Stripe-Context", sent["headers"])
        check_eq(got.id, theirs.id, "retrieved with Stripe-Context", got)
    finally:
        for d in (own, accounts):
            client.v2.core.event_destinations.delete(d.id)


def test_v2_thin_events_of_a_connected_account():
    client = new_client()
    accounts_path, own_path = "/" + unique("v2-thin-accounts"), "/" + unique("v2-thin-self")
    thin = destination(client, accounts_path, ["@accounts"], events=("v1.customer.created", "v1.customer.updated"),
                       event_payload="thin")
    own = destination(client, own_path, ["@self"], events=("v1.customer.created",), event_payload="thin")
    try:
        check_eq(thin.event_payload, "thin", "event_payload", thin)
        check_eq(thin.snapshot_api_version, None, "no snapshot_api_version on a thin destination", thin)
        acct = client.v1.accounts.create(params={"type": "custom", "country": "US",
                                                 "capabilities": {"transfers": {"requested": True}}})
        cus = client.v1.customers.create(params={"name": "Thin Tina"}, options={"stripe_account": acct.id},)

        def thin_delivery(path, event_type, object_id):
            def predicate(d):
                j = d["json"]
                return (d["path"] == path and j.get("type") == event_type
                        and (j.get("related_object") or {}).get("id") == object_id)
            return predicate

        found = sb.RECEIVER.wait_for(thin_delivery(accounts_path, "v1.customer.created", cus.id))
        check(found, "the thin destination got v1.customer.created", sb.RECEIVER.describe(accounts_path))
        d = found[0]
        body = d["json"]
        check_eq(body["object"], "v2.core.event", "thin payload object", body)
        check("data" not in body, "a thin payload carries no data", body)
        check_eq(body["context"], acct.id, "context is the connected account", body)
        check("account" not in body, "no v1 account field", body)
        e = expect_error(Exception, lambda: stripe.Webhook.construct_event(
            d["body"], d["headers"]["stripe-signature"], thin.webhook_endpoint.signing_secret),
            "construct_event on a thin payload")
        check(isinstance(e, ValueError), "construct_event refuses thin payloads", repr(e))

        notif = client.parse_event_notification(d["body"], d["headers"]["stripe-signature"],
                                                thin.webhook_endpoint.signing_secret)
        check_eq(notif.type, "v1.customer.created", "notification type", notif)
        check_eq(str(notif.context), acct.id, "notification context", notif)
        HTTP_LOG.reset()
        event = notif.fetch_event()
        sent = HTTP_LOG.snapshot()[-1]
        check_eq(sent["headers"].get("Stripe-Context"), acct.id, "fetch_event sends Stripe-Context", sent["headers"])
        check_eq(event.id, notif.id, "fetched event id", event)
        check_eq(event.type, "v1.customer.created", "fetched event type", event)
        check_eq(event.related_object.url, "/v1/customers/%s" % cus.id, "related_object.url", event)
        related = notif.fetch_related_object()
        check(isinstance(related, stripe.Customer), "fetch_related_object returns a Customer", type(related).__name__)
        check_eq(related.id, cus.id, "related object id", related)
        check_eq(related.name, "Thin Tina", "related object as the connected account sees it", related)

        # An update: its v2 event shows the change.
        client.v1.customers.update(cus.id, params={"name": "Thin Tom"}, options={"stripe_account": acct.id})
        found = sb.RECEIVER.wait_for(thin_delivery(accounts_path, "v1.customer.updated", cus.id))
        check(found, "v1.customer.updated delivered thin", sb.RECEIVER.describe(accounts_path))
        upd = client.parse_event_notification(found[0]["body"], found[0]["headers"]["stripe-signature"],
                                              thin.webhook_endpoint.signing_secret).fetch_event()
        check_eq(upd.changes.to_dict(), {"before": {"name": "Thin Tina"}, "after": {"name": "Thin Tom"}},
                 "changes of the update", upd)

        # Lists, as the connected account, filtered by object and type.
        as_acct = client.with_stripe_context(acct.id)
        listed = [e.type for e in as_acct.v2.core.events.list({"object_id": cus.id}).auto_paging_iter()]
        check_eq(sorted(listed), ["v1.customer.created", "v1.customer.updated"], "events about the customer", listed)
        only = as_acct.v2.core.events.list({"object_id": cus.id, "types": ["v1.customer.updated"]})
        check_eq([e.type for e in only.data], ["v1.customer.updated"], "types filter", only)
        later = as_acct.v2.core.events.list({"created": {"gt": "2999-01-01T00:00:00.000Z"}})
        check_eq(later.data, [], "created filter", later)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.events.retrieve(notif.id),
                         "the connected account's event without its context")
        check_eq(e.http_status, 404, "without context: http_status", error_summary(e))
        check(not sb.RECEIVER.wait_for(thin_delivery(own_path, "v1.customer.created", cus.id), timeout=0),
              "an @self thin destination got a connected account's event", sb.RECEIVER.describe(own_path))
    finally:
        for x in (thin, own):
            client.v2.core.event_destinations.delete(x.id)


def test_v2_ping_reaches_that_destination_alone():
    client = new_client()
    path, other_path = "/" + unique("v2-ping"), "/" + unique("v2-ping-other")
    dest = destination(client, path, ["@self"], events=("v1.customer.created",), event_payload="thin")
    other = destination(client, other_path, ["@self"], events=("v1.customer.created",), event_payload="thin")
    try:
        pinged = client.v2.core.event_destinations.ping(dest.id)
        check(isinstance(pinged, stripe.v2.core.EventDestination), "ping answers with the destination",
              type(pinged).__name__)
        check_eq(pinged.id, dest.id, "the pinged destination", pinged)

        def ping_at(p):
            return lambda d: d["path"] == p and d["json"].get("type") == "v2.core.event_destination.ping"
        found = sb.RECEIVER.wait_for(ping_at(path))
        check(found, "the ping was delivered", sb.RECEIVER.describe(path))
        notif = client.parse_event_notification(found[0]["body"], found[0]["headers"]["stripe-signature"],
                                                dest.webhook_endpoint.signing_secret)
        check_eq(notif.type, "v2.core.event_destination.ping", "a ping notification", notif)
        related = notif.fetch_related_object()
        check(isinstance(related, stripe.v2.core.EventDestination), "its related object is the destination",
              type(related).__name__)
        check_eq(related.id, dest.id, "related object id", related)
        listed = client.v2.core.events.list({"types": ["v2.core.event_destination.ping"],
                                             "object_id": dest.id})
        check_eq([e.id for e in listed.data], [notif.id], "the ping is listed", listed)
        check(not sb.RECEIVER.wait_for(ping_at(other_path), timeout=0), "another destination got the ping",
              sb.RECEIVER.describe(other_path))
        client.v2.core.event_destinations.disable(dest.id)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.event_destinations.ping(dest.id),
                         "pinging a disabled destination")
        check_eq(e.http_status, 400, "disabled: http_status", error_summary(e))
    finally:
        delete_quietly(client, [dest.id, other.id])


def test_v2_bad_input_names_the_parameter():
    client = new_client()
    cases = [
        ({"event_payload": "bogus"}, "event_payload"),
        ({"events_from": ["@everyone"]}, "events_from"),
        ({"enabled_events": ["not.a.type"]}, "enabled_events"),
        ({"webhook_endpoint": {"url": "not a url"}}, "webhook_endpoint[url]"),
        ({"type": "amazon_eventbridge"}, "type"),
        ({"event_payload": "thin"}, "enabled_events"),
        ({"event_payload": "thin", "enabled_events": ["v1.customer.created"],
          "snapshot_api_version": "2026-10-28.endive"}, "snapshot_api_version"),
    ]
    for change, param in cases:
        params = {
            "name": "bad", "type": "webhook_endpoint", "event_payload": "snapshot",
            "enabled_events": ["customer.created"], "webhook_endpoint": {"url": sb.RECEIVER.url("/bad")},
        }
        params.update(change)
        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v2.core.event_destinations.create(params), "create with %s" % change)
        check_eq(e.http_status, 400, "%s: http_status" % param, error_summary(e))
        check_eq(e.param, param, "%s: param" % param, error_summary(e))
    e = expect_error(stripe.InvalidRequestError,
                     lambda: client.v2.core.event_destinations.create({"name": "x"}), "missing type")
    check_eq(e.http_status, 400, "missing: http_status", error_summary(e))
    e = expect_error(stripe.InvalidRequestError,
                     lambda: client.v2.core.event_destinations.retrieve("ed_missing"), "unknown id")
    check_eq(e.http_status, 404, "unknown id: http_status", error_summary(e))


TESTS = [
    test_v2_event_destination_crud,
    test_v2_event_destination_list_pages,
    test_v2_snapshot_destinations_route_by_events_from,
    test_v2_thin_events_of_a_connected_account,
    test_v2_ping_reaches_that_destination_alone,
    test_v2_bad_input_names_the_parameter,
]


if __name__ == "__main__":
    sys.exit(sb.main(only={t.__name__ for t in TESTS}))
