#!/usr/bin/env python3
"""Connect compatibility tests: stripe-python's `stripe_account` against Switchboard.

These tests share test_stripe_python.py's helpers (recording HTTP client,
webhook receiver, check functions) and are run by it: one command,
`python test_stripe_python.py`, runs both files. Running this file directly
runs only the Connect tests (same environment variables:
SWITCHBOARD_API_BASE, SWITCHBOARD_TEST_KEY, optional SWITCHBOARD_TESTS).

Every object of a connected account is reached with the SDK's own
`options={"stripe_account": acct}` (StripeClient) or `stripe_account=acct`
(legacy class methods), which the SDK sends as the Stripe-Account header;
every event is received on a Connect webhook endpoint (connect=True) and
verified with stripe.Webhook.construct_event.
"""

import sys

import stripe

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
import test_stripe_python as sb  # noqa: E402
from test_stripe_python import (  # noqa: E402
    HTTP_LOG,
    QUIET_EVENTS,
    CheckFailed,
    RecordingClient,
    check,
    check_eq,
    delete_endpoints_quietly,
    error_summary,
    expect_error,
    field,
    new_client,
    poll,
    unique,
    verify_delivery,
)

TOS_DATE = 1700000000
TEST_BANK = {
    "object": "bank_account",
    "country": "US",
    "currency": "usd",
    "routing_number": "110000000",
    "account_number": "000123456789",
}


# ---------------------------------------------------------------------------
# Connect helpers


def as_account(acct_id):
    """Request options acting as a connected account (the Stripe-Account header)."""
    return {"stripe_account": acct_id}


def connect_endpoint(client, path, events):
    """A Connect webhook endpoint (connect=True) posting to the receiver's `path`."""
    we = client.v1.webhook_endpoints.create(
        params={"url": sb.RECEIVER.url(path), "enabled_events": events, "connect": True}
    )
    app = field(we, "application")
    check(isinstance(app, str) and app.startswith("ca_"),
          "a connect=True endpoint's application is the platform's ca_ client id", we)
    return we


def platform_endpoint(client, path, events):
    return client.v1.webhook_endpoints.create(params={"url": sb.RECEIVER.url(path), "enabled_events": events})


def connect_delivery(path, event_type, account, object_id=None, where=None):
    """Predicate: a delivery to `path` of `event_type` on connected `account`."""

    def predicate(d):
        j = d["json"]
        if d["path"] != path or j.get("type") != event_type or j.get("account") != account:
            return False
        obj = (j.get("data") or {}).get("object") or {}
        if object_id is not None and obj.get("id") != object_id:
            return False
        return where is None or where(j)

    return predicate


def wait_connect_event(path, secret, event_type, account, object_id=None, where=None, what=None):
    """Waits for the delivery, verifies it with construct_event, checks `account`; returns the Event."""
    what = what or event_type
    found = sb.RECEIVER.wait_for(connect_delivery(path, event_type, account, object_id, where))
    check(found, "%s on %s (object %s) delivered to the Connect endpoint %s within %ss"
          % (event_type, account, object_id, path, sb.DELIVERY_TIMEOUT), sb.RECEIVER.describe(path))
    event = verify_delivery(found[0], secret, what)
    check(isinstance(event, stripe.Event), "%s: construct_event returns an Event" % what, type(event).__name__)
    check_eq(event.type, event_type, what + ": type", event)
    check_eq(field(event, "account"), account, what + ": event.account (top-level) is the connected account", event)
    check_eq(event.livemode, False, what + ": livemode", event)
    return event


def connected_events(client, acct_id, event_type, object_id=None):
    """Events of `event_type` on the connected account (listed with stripe_account)."""
    page = client.v1.events.list(params={"type": event_type, "limit": 100}, options=as_account(acct_id))
    return [e for e in page.auto_paging_iter()
            if object_id is None or field(e.data.object, "id") == object_id]


def onboarded_account(client, bank="btok_us_verified", **extra):
    """A Custom company account with everything Stripe needs: charges_enabled."""
    params = {
        "controller": {
            "stripe_dashboard": {"type": "none"},
            "fees": {"payer": "application"},
            "losses": {"payments": "application"},
            "requirement_collection": "application",
        },
        "country": "US",
        "business_type": "company",
        "company": {"name": "Compat Co"},
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "email": "owner@compat.example",
        "metadata": {"suite": "python-connect"},
        "tos_acceptance": {"date": TOS_DATE, "ip": "127.0.0.1"},
    }
    params.update(extra)
    acct = client.v1.accounts.create(params=params)
    client.v1.accounts.persons.create(
        acct.id,
        params={"first_name": "Rep", "last_name": "Resentative", "relationship": {"representative": True, "title": "CEO"}},
    )
    client.v1.accounts.external_accounts.create(acct.id, params={"external_account": bank})
    acct = client.v1.accounts.retrieve(acct.id)
    check_eq(acct.charges_enabled, True, "onboarded account charges_enabled", acct)
    check_eq(list(acct.requirements.currently_due), [], "onboarded account has nothing currently_due", acct)
    return acct


def stripe_account_headers(exchanges):
    return [ex["headers"].get("Stripe-Account") for ex in exchanges]


def advance_clock(client, seconds):
    """Moves the platform's test clock (Switchboard's own endpoint, through
    the SDK's raw_request): what comes due in that time happens now."""
    return client.raw_request("post", "/switchboard/v1/clock/advance", seconds=seconds).data


TWO_DAYS = 2 * 86400


def available_usd(balance):
    return sum(b.amount for b in balance.available if b.currency == "usd")


def deliveries_on(path, account=None):
    with sb.RECEIVER.cond:
        return [d for d in sb.RECEIVER.deliveries
                if d["path"] == path and (account is None or d["json"].get("account") == account)]


# ---------------------------------------------------------------------------
# Tests


def test_connect_webhook_customer():
    client = new_client()
    cpath = "/" + unique("connect-cus")
    ppath = "/" + unique("platform-cus")
    cwe = connect_endpoint(client, cpath, ["customer.created"])
    pwe = platform_endpoint(client, ppath, ["customer.created"])
    try:
        acct = client.v1.accounts.create(params={"type": "standard", "email": "std@compat.example"})
        check(acct.id.startswith("acct_"), "account id prefix", acct)
        check_eq(acct.type, "standard", "account type", acct)
        opts = as_account(acct.id)

        HTTP_LOG.reset()
        cus = client.v1.customers.create(params={"name": "Connected Carl", "email": "carl@example.com"}, options=opts)
        sent = HTTP_LOG.snapshot()[-1]
        check_eq(sent["headers"].get("Stripe-Account"), acct.id, "SDK sent Stripe-Account", sent["headers"])
        check(cus.id.startswith("cus_"), "customer id prefix", cus)
        plat_cus = client.v1.customers.create(params={"name": "Platform Pat"})

        event = wait_connect_event(cpath, cwe.secret, "customer.created", acct.id, cus.id)
        check(isinstance(event.data.object, stripe.Customer), "data.object is a Customer", type(event.data.object).__name__)
        check_eq(event.data.object.email, "carl@example.com", "delivered customer email", event)
        check_eq(event.pending_webhooks, 1, "only the Connect endpoint was due this event (pending_webhooks)", event)

        # The platform's own customer goes to the account endpoint, not the Connect one.
        pd = sb.RECEIVER.wait_for(sb.delivery_for(ppath, "customer.created", plat_cus.id))
        check(pd, "platform customer.created delivered to the platform endpoint", sb.RECEIVER.describe(ppath))
        pevent = verify_delivery(pd[0], pwe.secret, "platform customer.created")
        check("account" not in pevent, "platform event has no top-level account", pevent)
        check_eq(pevent.pending_webhooks, 1, "only the platform endpoint was due the platform event", pevent)
        check_eq(deliveries_on(ppath, acct.id), [], "platform endpoint got no connected-account event",
                 sb.RECEIVER.describe(ppath))
        check(not sb.RECEIVER.wait_for(sb.delivery_for(cpath, object_id=plat_cus.id), timeout=0),
              "Connect endpoint got the platform's customer", sb.RECEIVER.describe(cpath))
        # Signed with the Connect endpoint's secret, not the platform endpoint's.
        try:
            d = sb.RECEIVER.wait_for(connect_delivery(cpath, "customer.created", acct.id, cus.id), timeout=0)[0]
            stripe.Webhook.construct_event(d["body"], d["headers"]["stripe-signature"], pwe.secret)
            raise CheckFailed("Connect delivery verified with the platform endpoint's secret")
        except stripe.SignatureVerificationError:
            pass

        got = client.v1.customers.retrieve(cus.id, options=opts)
        check_eq(got.id, cus.id, "customer retrievable with stripe_account", got)
        check_eq(got.name, "Connected Carl", "retrieved name", got)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.customers.retrieve(cus.id),
                         "connected customer without stripe_account")
        check_eq(e.http_status, 404, "without stripe_account: http_status", error_summary(e))
        check_eq(e.code, "resource_missing", "without stripe_account: code", error_summary(e))
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.customers.retrieve(plat_cus.id, options=opts),
                         "platform customer as the connected account")
        check_eq(e.http_status, 404, "platform customer via stripe_account: http_status", error_summary(e))

        # The event belongs to the connected account too.
        api_ev = client.v1.events.retrieve(event.id, options=opts)
        check_eq(field(api_ev, "account"), acct.id, "API event account", api_ev)
        check_eq(api_ev.data.object.id, cus.id, "API event object", api_ev)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.events.retrieve(event.id),
                         "connected event without stripe_account")
        check_eq(e.http_status, 404, "connected event without stripe_account: http_status", error_summary(e))
        settled = poll(lambda: client.v1.events.retrieve(event.id, options=opts), lambda ev: ev.pending_webhooks == 0)
        check_eq(settled.pending_webhooks, 0, "connected event pending_webhooks after delivery", settled)
        check_eq([ev.id for ev in connected_events(client, acct.id, "customer.created")], [event.id],
                 "the connected account's customer.created events")
    finally:
        delete_endpoints_quietly(client, [cwe.id, pwe.id])


def test_connect_documented_events():
    """Each event of the Connect webhooks table, on one connected account."""
    client = new_client()
    types = [
        "account.updated",
        "person.updated",
        "account.external_account.updated",
        "balance.available",
        "payment_intent.succeeded",
        "payout.failed",
        "account.application.deauthorized",
    ]
    cpath = "/" + unique("connect-table")
    ppath = "/" + unique("platform-table")
    we = connect_endpoint(client, cpath, types)
    pwe = platform_endpoint(client, ppath, types)
    secret, client_id = we.secret, we.application
    try:
        acct = client.v1.accounts.create(
            params={
                "controller": {
                    "stripe_dashboard": {"type": "none"},
                    "fees": {"payer": "application"},
                    "losses": {"payments": "application"},
                    "requirement_collection": "application",
                },
                "business_type": "company",
                "company": {"name": "Table Co"},
                "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
                "email": "table@compat.example",
                "metadata": {"suite": "python-connect"},
            }
        )
        check_eq(acct.type, "custom", "controller[stripe_dashboard][type]=none makes a custom account", acct)
        check_eq(acct.controller.stripe_dashboard.type, "none", "controller.stripe_dashboard.type", acct)
        check_eq(acct.controller.requirement_collection, "application", "controller.requirement_collection", acct)
        check_eq(acct.charges_enabled, False, "new account charges_enabled", acct)
        due = list(acct.requirements.currently_due)
        for req in ["external_account", "tos_acceptance.date", "representative.first_name"]:
            check(req in due, "%s currently_due on a new company account" % req, due)
        opts = as_account(acct.id)

        # person.updated
        person = client.v1.accounts.persons.create(
            acct.id,
            params={"first_name": "Ada", "email": "ada@table.example",
                    "relationship": {"representative": True, "title": "CEO", "owner": True, "percent_ownership": "60"}},
        )
        check(isinstance(person, stripe.Person), "persons.create returns a Person", type(person).__name__)
        check_eq(person.account, acct.id, "person.account", person)
        person = client.v1.accounts.persons.update(
            acct.id, person.id, params={"last_name": "Lovelace", "dob": {"day": 10, "month": 12, "year": 1985}}
        )
        ev = wait_connect_event(cpath, secret, "person.updated", acct.id, person.id)
        check(isinstance(ev.data.object, stripe.Person), "person.updated object is a Person", type(ev.data.object).__name__)
        check_eq(ev.data.object.last_name, "Lovelace", "person.updated last_name", ev)
        check_eq(field(ev.data.previous_attributes, "last_name"), None, "person.updated previous last_name", ev)
        check("last_name" in ev.data.previous_attributes, "person.updated previous_attributes has last_name", ev)
        got = client.v1.accounts.persons.retrieve(acct.id, person.id)
        check_eq(got.to_dict(), ev.data.object.to_dict(), "person fetched back equals the event's", got, ev)
        got = client.v1.accounts.persons.retrieve(acct.id, person.id, options=opts)
        check_eq(got.id, person.id, "person fetched back as the connected account", got)

        # account.external_account.created (not subscribed) and later .updated
        ba = client.v1.accounts.external_accounts.create(acct.id, params={"external_account": "btok_us_verified_noAccount"})
        check(isinstance(ba, stripe.BankAccount), "external account is a BankAccount", type(ba).__name__)
        check_eq(ba.last4, "1116", "btok_us_verified_noAccount last4", ba)
        check_eq(ba.status, "new", "new bank account status", ba)
        check_eq(ba.default_for_currency, True, "first usd bank account is the default", ba)

        # account.updated: accepting the ToS completes the requirements.
        upd = client.v1.accounts.update(acct.id, params={"tos_acceptance": {"date": TOS_DATE, "ip": "127.0.0.1"}})
        check_eq(upd.charges_enabled, True, "charges_enabled once requirements are met", upd)
        check_eq(upd.payouts_enabled, True, "payouts_enabled once requirements are met", upd)
        check_eq(list(upd.requirements.currently_due), [], "nothing currently_due", upd)
        check_eq(upd.external_accounts.object, "list", "account.external_accounts is a list", upd)
        check_eq([x.id for x in upd.external_accounts.data], [ba.id], "account.external_accounts lists the bank", upd)
        ev = wait_connect_event(cpath, secret, "account.updated", acct.id, acct.id,
                                where=lambda j: j["data"]["object"].get("charges_enabled") is True)
        check(isinstance(ev.data.object, stripe.Account), "account.updated object is an Account", type(ev.data.object).__name__)
        check_eq(field(ev.data.previous_attributes, "charges_enabled"), False, "previous charges_enabled", ev)
        check_eq(ev.data.object.tos_acceptance.date, TOS_DATE, "account.updated tos_acceptance.date", ev)
        got = client.v1.accounts.retrieve(acct.id)
        check_eq(got.charges_enabled, True, "account fetched back: charges_enabled", got)
        got = client.v1.accounts.retrieve_current(options=opts)
        check_eq(got.id, acct.id, "GET /v1/account as the connected account", got)
        check_eq(got.charges_enabled, True, "own account charges_enabled", got)

        # payment_intent.succeeded and balance.available (pm_card_bypassPending)
        platform_balance = client.v1.balance.retrieve()
        pi = client.v1.payment_intents.create(
            params={"amount": 5000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": True,
                    "metadata": {"order": "table-1"}},
            options=opts,
        )
        check_eq(pi.status, "succeeded", "PaymentIntent status", pi)
        ev = wait_connect_event(cpath, secret, "payment_intent.succeeded", acct.id, pi.id)
        check(isinstance(ev.data.object, stripe.PaymentIntent), "payment_intent.succeeded object", type(ev.data.object).__name__)
        check_eq(ev.data.object.amount_received, 5000, "payment_intent.succeeded amount_received", ev)
        got = client.v1.payment_intents.retrieve(pi.id, options=opts)
        check_eq(got.status, "succeeded", "PaymentIntent fetched back as the account", got)
        check_eq(got.latest_charge, ev.data.object.latest_charge, "latest_charge matches the event", got, ev)
        charge = client.v1.charges.retrieve(got.latest_charge, options=opts)
        check_eq((charge.status, charge.paid, charge.amount), ("succeeded", True, 5000), "charge fetched back", charge)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.payment_intents.retrieve(pi.id),
                         "connected PaymentIntent without stripe_account")
        check_eq(e.http_status, 404, "connected PaymentIntent without stripe_account: http_status", error_summary(e))

        ev = wait_connect_event(cpath, secret, "balance.available", acct.id)
        check(isinstance(ev.data.object, stripe.Balance), "balance.available object is a Balance", type(ev.data.object).__name__)
        check_eq(ev.data.object.object, "balance", "balance.available object", ev)
        bal = client.v1.balance.retrieve(options=opts)
        check_eq(available_usd(bal), available_usd(ev.data.object), "balance fetched back = the event's available", bal, ev)
        check(0 < available_usd(bal) < 5000, "available balance is the charge net of fees", bal)
        check_eq(client.v1.balance.retrieve().to_dict(), platform_balance.to_dict(),
                 "the connected account's charge leaves the platform balance alone", platform_balance)

        # payout.failed and account.external_account.updated (status errored)
        po = client.v1.payouts.create(params={"amount": 1000, "currency": "usd"}, options=opts)
        check_eq(po.destination, ba.id, "payout goes to the default bank account", po)
        advance_clock(client, TWO_DAYS)  # it reaches the bank (which refuses it) two days later
        ev = wait_connect_event(cpath, secret, "payout.failed", acct.id, po.id)
        check(isinstance(ev.data.object, stripe.Payout), "payout.failed object is a Payout", type(ev.data.object).__name__)
        check_eq(ev.data.object.failure_code, "no_account", "payout.failed failure_code", ev)
        got = client.v1.payouts.retrieve(po.id, options=opts)
        check_eq((got.status, got.failure_code), ("failed", "no_account"), "payout fetched back", got)
        ev = wait_connect_event(cpath, secret, "account.external_account.updated", acct.id, ba.id)
        check(isinstance(ev.data.object, stripe.BankAccount), "external account event object", type(ev.data.object).__name__)
        check_eq(ev.data.object.status, "errored", "bank account status after the failed payout", ev)
        check_eq(field(ev.data.previous_attributes, "status"), "new", "previous status", ev)
        got = client.v1.accounts.external_accounts.retrieve(acct.id, ba.id)
        check_eq(got.status, "errored", "bank account fetched back", got)
        got = client.v1.accounts.external_accounts.retrieve(acct.id, ba.id, options=opts)
        check_eq(got.id, ba.id, "bank account fetched back as the account", got)

        # Before the account disconnects: the API has each delivered event on the account.
        for t in types[:-1]:
            evs = connected_events(client, acct.id, t)
            check(evs, "events.list(type=%s) with stripe_account finds the event" % t)
            check(all(field(x, "account") == acct.id for x in evs), "listed %s events carry account" % t, evs)

        # account.application.deauthorized
        e = expect_error(
            stripe.oauth_error.InvalidClientError,
            lambda: client.oauth.deauthorize(params={"client_id": "ca_" + "z" * 24, "stripe_user_id": acct.id}),
            "deauthorize with a wrong client_id",
        )
        check_eq(e.code, "invalid_client", "wrong client_id: OAuth error code", error_summary(e))
        resp = client.oauth.deauthorize(params={"client_id": client_id, "stripe_user_id": acct.id})
        check_eq(resp.stripe_user_id, acct.id, "deauthorize answers with stripe_user_id", resp)
        ev = wait_connect_event(cpath, secret, "account.application.deauthorized", acct.id)
        check(isinstance(ev.data.object, stripe.Application), "deauthorized object is an Application",
              type(ev.data.object).__name__)
        check_eq((ev.data.object.id, ev.data.object.object), (client_id, "application"),
                 "account.application.deauthorized data.object", ev)
        e = expect_error(stripe.PermissionError, lambda: client.v1.balance.retrieve(options=opts),
                         "stripe_account after deauthorization")
        check_eq(e.http_status, 403, "after deauthorization: http_status", error_summary(e))

        # Routing: each connected event went to the Connect endpoint only.
        for d in deliveries_on(cpath, acct.id):
            check_eq(d["json"].get("pending_webhooks"), 1,
                     "%s was due to the Connect endpoint only" % d["json"].get("type"), d["json"])
        check_eq(deliveries_on(ppath), [], "the platform endpoint got none of the connected events",
                 sb.RECEIVER.describe(ppath))
        got_types = {d["json"]["type"] for d in deliveries_on(cpath, acct.id)}
        check_eq(got_types, set(types), "event types delivered to the Connect endpoint", sorted(got_types))
    finally:
        delete_endpoints_quietly(client, [we.id, pwe.id])


def test_connect_error_classes():
    client = new_client()
    acct = onboarded_account(client)
    other = onboarded_account(client)
    opts = as_account(acct.id)

    # CardError (402) on a declined card.
    e = expect_error(
        stripe.CardError,
        lambda: client.v1.payment_intents.create(
            params={"amount": 1500, "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": True},
            options=opts,
        ),
        "declined card",
    )
    check_eq(e.http_status, 402, "CardError http_status", error_summary(e))
    check_eq(e.code, "card_declined", "CardError code", error_summary(e))
    check_eq(e.error.type, "card_error", "CardError error.type", error_summary(e))
    check_eq(e.error.decline_code, "generic_decline", "CardError error.decline_code", error_summary(e))
    check_eq(e.json_body["error"]["decline_code"], "generic_decline", "json_body decline_code", e.json_body)
    check(e.user_message, "CardError has a message", error_summary(e))
    check(isinstance(e.request_id, str) and e.request_id.startswith("req_"), "CardError request_id", error_summary(e))
    failed_pi = e.error.payment_intent
    check(isinstance(failed_pi, stripe.PaymentIntent), "error.payment_intent is a PaymentIntent", type(failed_pi).__name__)
    check_eq(failed_pi.status, "requires_payment_method", "declined PaymentIntent status", failed_pi)
    check_eq(failed_pi.last_payment_error.decline_code, "generic_decline", "last_payment_error.decline_code", failed_pi)
    got = client.v1.payment_intents.retrieve(failed_pi.id, options=opts)
    check_eq(got.status, "requires_payment_method", "declined PaymentIntent fetched back", got)
    check_eq(got.last_payment_error.code, "card_declined", "fetched last_payment_error.code", got)
    check_eq(e.error.charge, got.latest_charge, "CardError error.charge is the failed charge", error_summary(e), got)
    ch = client.v1.charges.retrieve(got.latest_charge, options=opts)
    check_eq((ch.status, ch.paid, ch.failure_code), ("failed", False, "card_declined"), "declined charge", ch)
    check_eq(ch.outcome.reason, "generic_decline", "declined charge outcome.reason", ch)
    failed = connected_events(client, acct.id, "payment_intent.payment_failed", failed_pi.id)
    check_eq(len(failed), 1, "payment_intent.payment_failed events", [x.id for x in failed])
    check_eq(field(failed[0], "account"), acct.id, "payment_failed event account", failed[0])
    charge_failed = connected_events(client, acct.id, "charge.failed", ch.id)
    check_eq(len(charge_failed), 1, "charge.failed events", [x.id for x in charge_failed])

    # Insufficient funds, through POST /v1/payment_intents/{id}/confirm.
    pi = client.v1.payment_intents.create(
        params={"amount": 2500, "currency": "usd", "payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
        options=opts,
    )
    check_eq(pi.status, "requires_confirmation", "unconfirmed PaymentIntent status", pi)
    e = expect_error(stripe.CardError, lambda: client.v1.payment_intents.confirm(pi.id, options=opts),
                     "confirm with an insufficient-funds card")
    check_eq((e.http_status, e.code), (402, "card_declined"), "insufficient funds status and code", error_summary(e))
    check_eq(e.error.decline_code, "insufficient_funds", "insufficient funds decline_code", error_summary(e))
    # The same PaymentIntent then succeeds with a good card.
    ok = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"}, options=opts)
    check_eq(ok.status, "succeeded", "re-confirmed with pm_card_visa", ok)
    bal = client.v1.balance.retrieve(options=opts)
    check_eq(available_usd(bal), 0, "pm_card_visa funds are not available yet", bal)
    check(sum(b.amount for b in bal.pending if b.currency == "usd") > 0, "pm_card_visa funds are pending", bal)
    e = expect_error(stripe.InvalidRequestError, lambda: client.v1.payment_intents.confirm(pi.id, options=opts),
                     "confirm a succeeded PaymentIntent")
    check_eq(e.code, "payment_intent_unexpected_state", "re-confirm code", error_summary(e))

    # InvalidRequestError 404: the account's objects are invisible elsewhere.
    cus = client.v1.customers.create(params={"name": "Scoped"}, options=opts)
    for what, fn in [
        ("without stripe_account", lambda: client.v1.customers.retrieve(cus.id)),
        ("as another connected account", lambda: client.v1.customers.retrieve(cus.id, options=as_account(other.id))),
        ("charge without stripe_account", lambda: client.v1.charges.retrieve(ch.id)),
    ]:
        e = expect_error(stripe.InvalidRequestError, fn, "connected object " + what)
        check_eq(e.http_status, 404, what + ": http_status", error_summary(e))
        check_eq(e.code, "resource_missing", what + ": code", error_summary(e))

    # PermissionError (403): another account's resources, an unknown account.
    e = expect_error(stripe.PermissionError, lambda: client.v1.accounts.retrieve(other.id, options=opts),
                     "retrieve another account while acting as one")
    check_eq(e.http_status, 403, "acting as another account: http_status", error_summary(e))
    e = expect_error(stripe.PermissionError,
                     lambda: client.v1.customers.list(options=as_account("acct_" + "0" * 16)), "unknown stripe_account")
    check_eq(e.http_status, 403, "unknown stripe_account: http_status", error_summary(e))

    # AuthenticationError (401): a bad key, even with stripe_account.
    bad = new_client("sk_test_" + "q" * 24)
    e = expect_error(stripe.AuthenticationError, lambda: bad.v1.customers.list(options=opts), "bad key + stripe_account")
    check_eq(e.http_status, 401, "bad key http_status", error_summary(e))

    # IdempotencyError: a key replays on the connected account, and refuses other params.
    key = unique("connect-idem")
    first = client.v1.customers.create(params={"name": "Idem"}, options={"stripe_account": acct.id, "idempotency_key": key})
    HTTP_LOG.reset()
    again = client.v1.customers.create(params={"name": "Idem"}, options={"stripe_account": acct.id, "idempotency_key": key})
    check_eq(again.id, first.id, "replayed create on the connected account", first, again)
    last = HTTP_LOG.snapshot()[-1]
    replayed = {k.lower(): v for k, v in last["response_headers"].items()}.get("idempotent-replayed")
    check_eq(replayed, "true", "Idempotent-Replayed", last["response_headers"])
    e = expect_error(
        stripe.IdempotencyError,
        lambda: client.v1.customers.create(params={"name": "Other"},
                                           options={"stripe_account": acct.id, "idempotency_key": key}),
        "same key, different params, connected account",
    )
    check_eq(e.http_status, 400, "IdempotencyError http_status", error_summary(e))
    check_eq(e.error.type, "idempotency_error", "IdempotencyError type", error_summary(e))
    check_eq(len(connected_events(client, acct.id, "customer.created", first.id)), 1,
             "one customer.created behind the idempotency key")

    # PermissionError after deauthorization; deauthorizing twice is an OAuth error.
    probe = new_client()
    we = connect_endpoint(probe, "/" + unique("connect-errors"), QUIET_EVENTS)
    try:
        client.oauth.deauthorize(params={"client_id": we.application, "stripe_user_id": acct.id})
        for what, fn in [
            ("retrieve customer", lambda: client.v1.customers.retrieve(cus.id, options=opts)),
            ("create customer", lambda: client.v1.customers.create(params={"name": "late"}, options=opts)),
            ("GET /v1/account", lambda: client.v1.accounts.retrieve_current(options=opts)),
        ]:
            e = expect_error(stripe.PermissionError, fn, what + " after deauthorization")
            check_eq(e.http_status, 403, what + " after deauthorization: http_status", error_summary(e))
            check_eq(e.error.type, "invalid_request_error", what + " after deauthorization: error.type",
                     error_summary(e))
        e = expect_error(
            stripe.oauth_error.InvalidClientError,
            lambda: client.oauth.deauthorize(params={"client_id": we.application, "stripe_user_id": acct.id}),
            "deauthorize an already disconnected account",
        )
        check_eq(e.code, "invalid_client", "second deauthorize: OAuth error code", error_summary(e))
        # The other account is untouched.
        check_eq(client.v1.accounts.retrieve_current(options=as_account(other.id)).id, other.id,
                 "other account still reachable")
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_connect_auto_paging():
    client = new_client()
    acct = client.v1.accounts.create(params={"type": "express", "email": "pages@compat.example"})
    other = client.v1.accounts.create(params={"type": "express"})
    opts = as_account(acct.id)
    created = [client.v1.customers.create(params={"name": "Paged %d" % i}, options=opts).id for i in range(12)]

    HTTP_LOG.reset()
    first = client.v1.customers.list(params={"limit": 5}, options=opts)
    check_eq(len(first.data), 5, "first page size", first)
    check_eq(first.has_more, True, "first page has_more", first)
    seen = [c.id for c in first.auto_paging_iter()]
    check_eq(seen, list(reversed(created)), "auto_paging_iter yields all 12, newest first", seen)
    gets = [ex for ex in HTTP_LOG.snapshot() if ex["method"] == "GET"]
    check(len(gets) >= 3, "12 customers with limit=5 take at least 3 requests", len(gets))
    check_eq(stripe_account_headers(gets), [acct.id] * len(gets), "every page request carries Stripe-Account",
             [ex["url"] for ex in gets])
    for ex in gets:
        check("limit=5" in ex["url"], "every page keeps limit=5", ex["url"])

    # Backwards from the oldest.
    back = client.v1.customers.list(params={"limit": 5, "ending_before": created[0]}, options=opts)
    check_eq([c.id for c in back.auto_paging_iter()], created[1:], "ending_before auto-paging", back)

    # The platform and another account see none of them.
    plat = {c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()}
    check_eq(plat & set(created), set(), "platform customer list has no connected customers")
    check_eq(len(client.v1.customers.list(options=as_account(other.id)).data), 0, "another account has no customers")

    # Sub-resources page too: persons of the account, listed as the account.
    persons = [client.v1.accounts.persons.create(acct.id, params={"first_name": "P%d" % i}).id for i in range(5)]
    HTTP_LOG.reset()
    listed = client.v1.accounts.persons.list(acct.id, params={"limit": 2}, options=opts)
    got = [p.id for p in listed.auto_paging_iter()]
    check_eq(got, list(reversed(persons)), "persons auto-paging", got)
    gets = [ex for ex in HTTP_LOG.snapshot() if ex["method"] == "GET"]
    check(len(gets) >= 3, "5 persons with limit=2 take at least 3 requests", len(gets))
    check_eq(stripe_account_headers(gets), [acct.id] * len(gets), "person pages carry Stripe-Account",
             [ex["url"] for ex in gets])

    # Accounts themselves page from the platform.
    accts = [a.id for a in client.v1.accounts.list(params={"limit": 1}).auto_paging_iter()]
    for a in (acct.id, other.id):
        check_eq(accts.count(a), 1, "accounts.list auto-paging yields %s once" % a, accts)
    check(accts.index(other.id) < accts.index(acct.id), "accounts newest first", accts)


def test_connect_payout_failure_and_recovery():
    client = new_client()
    path = "/" + unique("connect-payouts")
    we = connect_endpoint(client, path, ["payout.created", "payout.failed", "payout.paid",
                                         "account.external_account.created", "account.external_account.updated"])
    try:
        acct = onboarded_account(client, bank="btok_us_verified_noAccount")
        opts = as_account(acct.id)
        bad = acct.external_accounts.data[0]
        check_eq(bad.last4, "1116", "failing test bank account", acct)

        # Nothing to pay out yet.
        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v1.payouts.create(params={"amount": 100, "currency": "usd"}, options=opts),
                         "payout from an empty balance")
        check_eq((e.http_status, e.code), (400, "balance_insufficient"), "empty balance", error_summary(e))

        client.v1.payment_intents.create(
            params={"amount": 10000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": True},
            options=opts,
        )
        start = available_usd(client.v1.balance.retrieve(options=opts))
        check(start > 5000, "funds available after pm_card_bypassPending", start)

        po = client.v1.payouts.create(params={"amount": 2000, "currency": "usd", "description": "first"}, options=opts)
        check(isinstance(po, stripe.Payout), "payouts.create returns a Payout", type(po).__name__)
        check_eq((po.status, po.destination, po.amount), ("pending", bad.id, 2000), "new payout", po)
        wait_connect_event(path, we.secret, "payout.created", acct.id, po.id)
        check_eq(client.v1.payouts.retrieve(po.id, options=opts).status, "pending", "pending until it arrives")
        clock = advance_clock(client, TWO_DAYS)
        check(clock["offset_seconds"] >= TWO_DAYS, "the test clock moved", clock)
        failed = wait_connect_event(path, we.secret, "payout.failed", acct.id, po.id)
        check_eq(failed.data.object.status, "failed", "payout.failed status", failed)
        check_eq(failed.data.object.failure_code, "no_account", "payout.failed failure_code", failed)
        check(failed.data.object.failure_message, "payout.failed failure_message", failed)
        errored = wait_connect_event(path, we.secret, "account.external_account.updated", acct.id, bad.id)
        check_eq(errored.data.object.status, "errored", "bank account errored", errored)
        check_eq(client.v1.payouts.retrieve(po.id, options=opts).status, "failed", "payout fetched back")
        check_eq(available_usd(client.v1.balance.retrieve(options=opts)), start,
                 "a failed payout returns the funds to the available balance")

        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v1.payouts.create(params={"amount": 500, "currency": "usd"}, options=opts),
                         "payout to the errored bank account")
        check_eq((e.http_status, e.code), (400, "bank_account_unusable"), "errored bank account", error_summary(e))

        # Recovery: a new default bank account.
        good = client.v1.accounts.external_accounts.create(
            acct.id, params={"external_account": dict(TEST_BANK, account_holder_name="Compat Co"),
                             "default_for_currency": True, "metadata": {"role": "recovery"}},
        )
        check_eq((good.last4, good.default_for_currency, good.status), ("6789", True, "new"), "new bank account", good)
        check_eq(good.metadata.to_dict(), {"role": "recovery"}, "new bank account metadata", good)
        wait_connect_event(path, we.secret, "account.external_account.created", acct.id, good.id)
        listed = client.v1.accounts.external_accounts.list(acct.id, options=opts)
        defaults = {x.id: x.default_for_currency for x in listed.auto_paging_iter()}
        check_eq(defaults, {good.id: True, bad.id: False}, "default_for_currency moved to the new account", defaults)

        po2 = client.v1.payouts.create(params={"amount": 1500, "currency": "usd"}, options=opts)
        check_eq(po2.destination, good.id, "the payout goes to the new default", po2)
        advance_clock(client, TWO_DAYS)
        paid = wait_connect_event(path, we.secret, "payout.paid", acct.id, po2.id)
        check(isinstance(paid.data.object, stripe.Payout), "payout.paid object", type(paid.data.object).__name__)
        check_eq(paid.data.object.status, "paid", "payout.paid status", paid)
        check_eq(client.v1.payouts.retrieve(po2.id, options=opts).status, "paid", "paid payout fetched back")
        check_eq(available_usd(client.v1.balance.retrieve(options=opts)), start - 1500,
                 "a paid payout leaves the available balance")

        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v1.payouts.create(params={"amount": start, "currency": "usd"}, options=opts),
                         "payout above the available balance")
        check_eq((e.http_status, e.code), (400, "balance_insufficient"), "above balance", error_summary(e))
        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v1.payouts.create(params={"amount": 100, "currency": "usd", "destination": bad.id},
                                                          options=opts),
                         "explicit payout to the errored bank account")
        check_eq(e.code, "bank_account_unusable", "explicit destination still errored", error_summary(e))

        # Updating the errored account makes it usable again (account.external_account.updated).
        fixed = client.v1.accounts.external_accounts.update(acct.id, bad.id, params={"account_holder_name": "Fixed"})
        check_eq(fixed.account_holder_name, "Fixed", "updated holder name", fixed)
        wait_connect_event(path, we.secret, "account.external_account.updated", acct.id, bad.id,
                           where=lambda j: j["data"]["object"].get("account_holder_name") == "Fixed")

        payouts = [p.id for p in client.v1.payouts.list(params={"limit": 1}, options=opts).auto_paging_iter()]
        check_eq(payouts, [po2.id, po.id], "payouts.list as the account, newest first", payouts)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.payouts.retrieve(po2.id), "payout without stripe_account")
        check_eq(e.http_status, 404, "payout without stripe_account", error_summary(e))

        # Stripe does not promise delivery order, but the account's event list is
        # newest first: the failure after the creation.
        page = client.v1.events.list(params={"types": ["payout.created", "payout.failed"], "limit": 100}, options=opts)
        order = [x.type for x in page.auto_paging_iter() if x.data.object.id == po.id]
        check_eq(order, ["payout.failed", "payout.created"], "the payout's events, newest first", order)
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_connect_account_lifecycle():
    """Accounts, persons and external accounts CRUD with their Connect events."""
    client = new_client()
    path = "/" + unique("connect-life")
    we = connect_endpoint(client, path, ["*"])
    try:
        acct = client.v1.accounts.create(
            params={"type": "custom", "business_type": "individual",
                    "individual": {"first_name": "Ivy", "last_name": "Ind", "dob": {"day": 1, "month": 2, "year": 1990}},
                    "capabilities": {"card_payments": {"requested": True}}, "metadata": {"k": "v"}}
        )
        check_eq(acct.individual.first_name, "Ivy", "individual.first_name", acct)
        check_eq(acct.individual.dob.year, 1990, "individual.dob.year", acct)
        check_eq(acct.metadata.to_dict(), {"k": "v"}, "account metadata", acct)
        for req in ["external_account", "tos_acceptance.date", "tos_acceptance.ip"]:
            check(req in acct.requirements.currently_due, "%s currently_due" % req, acct.requirements)
        check_eq(acct.charges_enabled, False, "charges_enabled before requirements are met", acct)
        opts = as_account(acct.id)

        me = client.v1.accounts.retrieve_current()
        check(me.id.startswith("acct_") and me.id != acct.id, "GET /v1/account without stripe_account is the platform", me)
        check_eq(client.v1.accounts.retrieve_current(options=opts).id, acct.id, "GET /v1/account as the account")

        card = client.v1.accounts.external_accounts.create(acct.id, params={"external_account": "tok_visa_debit"})
        check(isinstance(card, stripe.Card), "a debit card external account is a Card", type(card).__name__)
        check_eq(card.funding, "debit", "card funding", card)
        upd = client.v1.accounts.update(acct.id, params={"tos_acceptance": {"date": TOS_DATE, "ip": "10.0.0.1"},
                                                          "metadata": {"k": "", "n": "1"}})
        check_eq(upd.charges_enabled, True, "individual account enabled", upd)
        check_eq(upd.metadata.to_dict(), {"n": "1"}, "account metadata update", upd)
        ev = wait_connect_event(path, we.secret, "account.updated", acct.id, acct.id,
                                where=lambda j: "metadata" in (j["data"].get("previous_attributes") or {}))
        check_eq(ev.data.previous_attributes.metadata.to_dict(), {"k": "v", "n": None},
                 "account.updated previous metadata", ev)
        check_eq(ev.data.previous_attributes.charges_enabled, False, "previous charges_enabled", ev)

        # Person create / update / delete → person.created / updated / deleted.
        p = client.v1.accounts.persons.create(acct.id, params={"first_name": "Dee", "relationship": {"director": True}},
                                              options=opts)
        wait_connect_event(path, we.secret, "person.created", acct.id, p.id)
        p = client.v1.accounts.persons.update(acct.id, p.id, params={"email": "dee@example.com", "metadata": {"a": "b"}})
        ev = wait_connect_event(path, we.secret, "person.updated", acct.id, p.id)
        check_eq(ev.data.previous_attributes.to_dict(), {"email": None, "metadata": {"a": None}},
                 "person.updated previous_attributes", ev)
        d = client.v1.accounts.persons.delete(acct.id, p.id)
        check_eq(field(d, "deleted"), True, "person deleted", d)
        wait_connect_event(path, we.secret, "person.deleted", acct.id, p.id)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.accounts.persons.retrieve(acct.id, p.id),
                         "retrieve a deleted person")
        check_eq(e.http_status, 404, "deleted person http_status", error_summary(e))

        # External account metadata update and delete.
        ba = client.v1.accounts.external_accounts.create(acct.id, params={"external_account": "btok_us_verified"})
        wait_connect_event(path, we.secret, "account.external_account.created", acct.id, ba.id)
        ba2 = client.v1.accounts.external_accounts.update(acct.id, ba.id, params={"metadata": {"x": "y"}}, options=opts)
        check_eq(ba2.metadata.to_dict(), {"x": "y"}, "bank account metadata", ba2)
        ev = wait_connect_event(path, we.secret, "account.external_account.updated", acct.id, ba.id)
        check_eq(ev.data.previous_attributes.to_dict(), {"metadata": {"x": None}}, "external account previous", ev)
        d = client.v1.accounts.external_accounts.delete(acct.id, ba.id)
        check_eq((field(d, "deleted"), d.id), (True, ba.id), "external account deleted", d)
        wait_connect_event(path, we.secret, "account.external_account.deleted", acct.id, ba.id)
        left = [x.id for x in client.v1.accounts.external_accounts.list(acct.id).auto_paging_iter()]
        check_eq(left, [card.id], "external accounts after delete", left)

        listed = [a.id for a in client.v1.accounts.list(params={"limit": 100}).auto_paging_iter()]
        check(acct.id in listed, "accounts.list has the account", listed)

        # Deleting the account: gone for the platform and for Stripe-Account requests.
        d = client.v1.accounts.delete(acct.id)
        check_eq((d.id, field(d, "deleted")), (acct.id, True), "account deleted", d)
        e = expect_error(stripe.PermissionError, lambda: client.v1.customers.list(options=opts),
                         "stripe_account of a deleted account")
        check_eq(e.http_status, 403, "deleted account http_status", error_summary(e))
        listed = [a.id for a in client.v1.accounts.list(params={"limit": 100}).auto_paging_iter()]
        check(acct.id not in listed, "accounts.list no longer has the account", listed)
        # Stripe answers GET /v1/accounts/{id} for an account the key cannot reach
        # (deleted, never existed) with the same 403 as the Stripe-Account header:
        # "The provided key ... does not have access to account ... (or that
        # account does not exist)", raised by the SDK as PermissionError.
        for what, acct_id in [("deleted", acct.id), ("unknown", "acct_" + "0" * 16)]:
            e = expect_error(stripe.PermissionError, lambda: client.v1.accounts.retrieve(acct_id),
                             "accounts.retrieve of a %s account" % what)
            check_eq(e.http_status, 403, "accounts.retrieve of a %s account: http_status" % what, error_summary(e))
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_connect_legacy_global_api():
    """The same flows through the legacy class methods' `stripe_account=`."""
    saved = (stripe.api_key, stripe.api_base, stripe.connect_api_base, stripe.default_http_client)
    stripe.api_key = sb.TEST_KEY
    stripe.api_base = sb.API_BASE
    stripe.connect_api_base = sb.API_BASE
    stripe.default_http_client = RecordingClient(timeout=30)
    we_id = None
    try:
        path = "/" + unique("connect-legacy")
        we = stripe.WebhookEndpoint.create(url=sb.RECEIVER.url(path), enabled_events=["*"], connect=True)
        we_id = we.id
        check(we.application.startswith("ca_"), "legacy connect endpoint application", we)

        acct = stripe.Account.create(type="custom", business_type="company", company={"name": "Legacy Co"},
                                     tos_acceptance={"date": TOS_DATE, "ip": "127.0.0.1"})
        person = stripe.Account.create_person(acct.id, first_name="Leg", last_name="Acy",
                                              relationship={"representative": True})
        check(isinstance(person, stripe.Person), "legacy create_person", type(person).__name__)
        person = stripe.Account.modify_person(acct.id, person.id, email="leg@acy.example")
        check_eq(person.email, "leg@acy.example", "legacy modify_person", person)
        ba = stripe.Account.create_external_account(acct.id, external_account="btok_us_verified")
        check(isinstance(ba, stripe.BankAccount), "legacy create_external_account", type(ba).__name__)
        ready = stripe.Account.retrieve(acct.id)
        check_eq(ready.charges_enabled, True, "legacy Account.retrieve charges_enabled", ready)
        wait_connect_event(path, we.secret, "account.updated", acct.id, acct.id,
                           where=lambda j: j["data"]["object"].get("charges_enabled") is True)

        cus = stripe.Customer.create(name="Legacy Connected", stripe_account=acct.id)
        check_eq(cus.stripe_account, acct.id, "legacy object remembers stripe_account", cus)
        ev = wait_connect_event(path, we.secret, "customer.created", acct.id, cus.id)
        check_eq(ev.data.object.name, "Legacy Connected", "legacy customer.created", ev)
        got = stripe.Customer.retrieve(cus.id, stripe_account=acct.id)
        check_eq(got.name, "Legacy Connected", "legacy retrieve with stripe_account", got)
        got.refresh()
        check_eq(got.id, cus.id, "refresh() keeps acting as the account", got)
        mod = stripe.Customer.modify(cus.id, stripe_account=acct.id, metadata={"via": "legacy"})
        check_eq(mod.metadata.to_dict(), {"via": "legacy"}, "legacy modify with stripe_account", mod)
        e = expect_error(stripe.InvalidRequestError, lambda: stripe.Customer.retrieve(cus.id),
                         "legacy retrieve without stripe_account")
        check_eq(e.http_status, 404, "legacy 404", error_summary(e))

        ids = [stripe.Customer.create(name="L%d" % i, stripe_account=acct.id).id for i in range(6)]
        HTTP_LOG.reset()
        seen = [c.id for c in stripe.Customer.list(limit=2, stripe_account=acct.id).auto_paging_iter()]
        check_eq(seen, list(reversed(ids)) + [cus.id], "legacy auto-paging as the account", seen)
        gets = [ex for ex in HTTP_LOG.snapshot() if ex["method"] == "GET"]
        check_eq(stripe_account_headers(gets), [acct.id] * len(gets), "legacy pages carry Stripe-Account",
                 [ex["url"] for ex in gets])

        pi = stripe.PaymentIntent.create(amount=3000, currency="usd", payment_method="pm_card_bypassPending",
                                         confirm=True, stripe_account=acct.id)
        check_eq(pi.status, "succeeded", "legacy PaymentIntent", pi)
        wait_connect_event(path, we.secret, "payment_intent.succeeded", acct.id, pi.id)
        bal = stripe.Balance.retrieve(stripe_account=acct.id)
        check(available_usd(bal) > 0, "legacy Balance.retrieve with stripe_account", bal)
        try:
            stripe.PaymentIntent.create(amount=3000, currency="usd", payment_method="pm_card_chargeDeclined",
                                        confirm=True, stripe_account=acct.id)
            raise CheckFailed("legacy declined card did not raise")
        except stripe.CardError as e:
            check_eq((e.http_status, e.code, e.error.decline_code), (402, "card_declined", "generic_decline"),
                     "legacy CardError", error_summary(e))
        po = stripe.Payout.create(amount=1000, currency="usd", stripe_account=acct.id)
        advance_clock(new_client(), TWO_DAYS)
        wait_connect_event(path, we.secret, "payout.paid", acct.id, po.id)
        check_eq(stripe.Payout.retrieve(po.id, stripe_account=acct.id).status, "paid", "legacy Payout.retrieve")

        try:
            stripe.OAuth.deauthorize(client_id="ca_" + "w" * 24, stripe_user_id=acct.id)
            raise CheckFailed("legacy deauthorize with a wrong client_id succeeded")
        except stripe.oauth_error.InvalidClientError as e:
            check_eq(e.code, "invalid_client", "legacy InvalidClientError code", error_summary(e))
        resp = stripe.OAuth.deauthorize(client_id=we.application, stripe_user_id=acct.id)
        check_eq(resp.stripe_user_id, acct.id, "legacy OAuth.deauthorize", resp)
        ev = wait_connect_event(path, we.secret, "account.application.deauthorized", acct.id)
        check_eq(ev.data.object.id, we.application, "legacy deauthorized application id", ev)
        e = expect_error(stripe.PermissionError, lambda: stripe.Customer.list(stripe_account=acct.id),
                         "legacy stripe_account after deauthorization")
        check_eq(e.http_status, 403, "legacy 403", error_summary(e))
    finally:
        stripe.api_key = sb.TEST_KEY
        if we_id:
            try:
                stripe.WebhookEndpoint.delete(we_id)
            except stripe.StripeError:
                pass
        stripe.api_key, stripe.api_base, stripe.connect_api_base, stripe.default_http_client = saved


def test_connect_expand_and_balance_transactions():
    """expand= through two levels, as integrations that sync payouts do."""
    client = new_client()
    acct = onboarded_account(client)
    opts = as_account(acct.id)
    pi = client.v1.payment_intents.create(
        params={"amount": 4200, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": True},
        options=opts,
    )
    got = client.v1.payment_intents.retrieve(
        pi.id, params={"expand": ["latest_charge.balance_transaction", "payment_method"]}, options=opts
    )
    check(isinstance(got.latest_charge, stripe.Charge), "latest_charge expanded", type(got.latest_charge).__name__)
    txn = got.latest_charge.balance_transaction
    check(isinstance(txn, stripe.BalanceTransaction), "balance_transaction expanded", type(txn).__name__)
    check(txn.available_on >= pi.created, "available_on", txn)
    check_eq((txn.amount, txn.net + txn.fee, txn.type), (4200, 4200, "charge"), "charge balance transaction", txn)
    check(isinstance(got.payment_method, stripe.PaymentMethod), "payment_method expanded", type(got.payment_method).__name__)
    check(got.payment_method.id.startswith("pm_") and got.payment_method.id != "pm_card_bypassPending",
          "a real PaymentMethod id, not the alias", got.payment_method.id)
    fetched = client.v1.balance_transactions.retrieve(txn.id, options=opts)
    check_eq(fetched.id, txn.id, "balance_transactions.retrieve", fetched)
    listed = [t.id for t in client.v1.balance_transactions.list(params={"type": "charge"}, options=opts).auto_paging_iter()]
    check_eq(listed, [txn.id], "balance_transactions.list type=charge", listed)
    e = expect_error(stripe.InvalidRequestError,
                     lambda: client.v1.payment_intents.retrieve(pi.id, params={"expand": ["amount"]}, options=opts),
                     "expanding a field that is not expandable")
    check_eq((e.http_status, e.param), (400, "expand"), "not expandable", error_summary(e))


TESTS = [
    test_connect_webhook_customer,
    test_connect_expand_and_balance_transactions,
    test_connect_documented_events,
    test_connect_error_classes,
    test_connect_auto_paging,
    test_connect_payout_failure_and_recovery,
    test_connect_account_lifecycle,
    test_connect_legacy_global_api,
]


if __name__ == "__main__":
    sys.exit(sb.main(only=[t.__name__ for t in TESTS]))
