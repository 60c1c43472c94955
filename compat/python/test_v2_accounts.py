#!/usr/bin/env python3
"""Accounts v2 compatibility tests: stripe-python's v2 client against Switchboard.

Run by test_stripe_python.py with its helpers and environment (one command
runs every file); running this file directly runs only these tests.

A platform on Accounts v2 creates an account with its identity, defaults
and configurations, receives the thin `v2.core.account*` events at an
`@self` thin destination, parses them with `parse_event_notification`,
fetches the event (`changes`) and the related `stripe.v2.core.Account`;
adds a person; sends the account through the hosted onboarding page with a
v2 account link and gets `v2.core.account_link.returned` and the
requirement / capability events; uses the account as a v1 connected account
(`Stripe-Account`); closes it. Bad input is a 400 naming the parameter.
"""

import sys

import stripe

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
import test_stripe_python as sb  # noqa: E402
from test_stripe_python import (  # noqa: E402
    check,
    check_eq,
    error_summary,
    expect_error,
    new_client,
    unique,
)
from test_money import submit_onboarding  # noqa: E402
from test_v2 import destination  # noqa: E402

V2_ACCOUNT_EVENTS = (
    "v2.core.account.created",
    "v2.core.account.updated",
    "v2.core.account.closed",
    "v2.core.account[requirements].updated",
    "v2.core.account[defaults].updated",
    "v2.core.account[configuration.merchant].capability_status_updated",
    "v2.core.account_person.created",
    "v2.core.account_person.updated",
    "v2.core.account_link.returned",
)


def thin_events(path, event_type, object_id):
    """A receiver predicate: thin `event_type` about `object_id` at `path`
    (None: an event without a related object)."""
    def predicate(d):
        j = d["json"]
        related = j.get("related_object")
        return (d["path"] == path and j.get("type") == event_type
                and (related["id"] == object_id if object_id else related is None))
    return predicate


def notification(client, dest, path, event_type, object_id):
    """Waits for a thin event and parses it as the SDK does."""
    found = sb.RECEIVER.wait_for(thin_events(path, event_type, object_id))
    check(found, "%s about %s delivered" % (event_type, object_id), sb.RECEIVER.describe(path))
    d = found[-1]
    check_eq(d["json"]["object"], "v2.core.event", "a thin payload", d["json"])
    check("data" not in d["json"] and "changes" not in d["json"], "thin: no data, no changes", d["json"])
    return client.parse_event_notification(d["body"], d["headers"]["stripe-signature"],
                                           dest.webhook_endpoint.signing_secret)


def new_account(client, **extra):
    params = {
        "contact_email": "jenny@example.com",
        "display_name": "Jenny's Shop",
        "dashboard": "express",
        "identity": {"country": "us", "entity_type": "individual",
                     "individual": {"given_name": "Jenny", "surname": "Rosen"}},
        "defaults": {"currency": "usd",
                     "responsibilities": {"fees_collector": "stripe", "losses_collector": "stripe"}},
        "configuration": {
            "merchant": {"capabilities": {"card_payments": {"requested": True}}},
            "recipient": {"capabilities": {"stripe_balance": {"stripe_transfers": {"requested": True}}}},
        },
        "include": ["identity", "defaults", "configuration.merchant", "configuration.recipient", "requirements"],
    }
    params.update(extra)
    return client.v2.core.accounts.create(params)


def test_v2_accounts_thin_events_onboarding_and_close():
    client = new_client()
    path = "/" + unique("v2-accounts")
    dest = destination(client, path, ["@self"], events=V2_ACCOUNT_EVENTS, event_payload="thin")
    try:
        acct = new_account(client)
        check(isinstance(acct, stripe.v2.core.Account), "a stripe.v2.core.Account", type(acct).__name__)
        check(acct.id.startswith("acct_"), "an acct_ id", acct.id)
        check_eq((acct.object, acct.contact_email, acct.display_name, acct.dashboard),
                 ("v2.core.account", "jenny@example.com", "Jenny's Shop", "express"), "created", acct)
        check_eq((acct.identity.country, acct.identity.entity_type), ("US", "individual"), "identity", acct.identity)
        check_eq(acct.identity.individual.given_name, "Jenny", "identity.individual", acct.identity)
        check_eq(acct.defaults.currency, "usd", "defaults.currency", acct.defaults)
        check_eq(sorted(acct.applied_configurations), ["merchant", "recipient"], "applied_configurations", acct)
        check_eq(acct.configuration.merchant.capabilities.card_payments.status, "restricted",
                 "card_payments before onboarding", acct.configuration.merchant)
        due = acct.requirements.entries
        check(due and all(e.minimum_deadline.status == "currently_due" for e in due),
              "requirements are currently due", acct.requirements)
        check(isinstance(acct.created, str) and acct.created.endswith("Z"), "created is RFC 3339", acct.created)

        notif = notification(client, dest, path, "v2.core.account.created", acct.id)
        check_eq(notif.context, None, "an @self event has no context", notif)
        check_eq(notif.related_object.url, "/v2/core/accounts/%s" % acct.id, "related_object.url", notif)
        related = notif.fetch_related_object()
        check(isinstance(related, stripe.v2.core.Account), "fetch_related_object: a v2 Account",
              type(related).__name__)
        check_eq(related.id, acct.id, "the related account", related)
        created = notif.fetch_event()
        check_eq((created.id, created.type), (notif.id, "v2.core.account.created"), "fetch_event", created)

        # Without include[], the sections are null, as on Stripe.
        plain = client.v2.core.accounts.retrieve(acct.id)
        check_eq((plain.identity, plain.configuration, plain.requirements), (None, None, None),
                 "sections null unless included", plain)
        one = client.v2.core.accounts.retrieve(acct.id, {"include": ["configuration.recipient"]})
        check_eq(one.configuration.merchant, None, "a configuration not included", one.configuration)
        check_eq(one.configuration.recipient.applied, True, "the configuration included", one.configuration)

        upd = client.v2.core.accounts.update(acct.id, {"display_name": "Jenny's Bakery",
                                                       "defaults": {"currency": "eur"}, "include": ["defaults"]})
        check_eq((upd.display_name, upd.defaults.currency), ("Jenny's Bakery", "eur"), "updated", upd)
        notif = notification(client, dest, path, "v2.core.account.updated", acct.id)
        ev = notif.fetch_event()
        check_eq(ev.changes.before.display_name, "Jenny's Shop", "changes.before", ev.changes)
        check_eq(ev.changes.after.display_name, "Jenny's Bakery", "changes.after", ev.changes)
        notification(client, dest, path, "v2.core.account[defaults].updated", acct.id)

        listed = [a.id for a in client.v2.core.accounts.list({"limit": 1}).auto_paging_iter()]
        check(acct.id in listed and len(listed) == len(set(listed)), "list pages over every account", listed)

        # A v2 account is a v1 connected account too.
        v1 = client.v1.accounts.retrieve(acct.id)
        check_eq((v1.email, v1.type, v1.default_currency), ("jenny@example.com", "express", "eur"), "as v1", v1)
        cus = client.v1.customers.create(params={"name": "Buyer"}, options={"stripe_account": acct.id})
        check_eq(client.v1.customers.retrieve(cus.id, options={"stripe_account": acct.id}).name, "Buyer",
                 "a customer of the connected account", cus)

        person = client.v2.core.accounts.persons.create(acct.id, {
            "given_name": "Ann", "surname": "Owner", "email": "ann@example.com",
            "relationship": {"owner": True, "percent_ownership": "60"},
        })
        check(isinstance(person, stripe.v2.core.AccountPerson), "a stripe.v2.core.AccountPerson",
              type(person).__name__)
        check_eq((person.account, person.given_name, person.relationship.owner), (acct.id, "Ann", True), "person",
                 person)
        notification(client, dest, path, "v2.core.account_person.created", person.id)
        person = client.v2.core.accounts.persons.update(acct.id, person.id, {"surname": "Owens"})
        check_eq(person.surname, "Owens", "person updated", person)
        notification(client, dest, path, "v2.core.account_person.updated", person.id)
        people = client.v2.core.accounts.persons.list(acct.id)
        check_eq([p.id for p in people.data], [person.id], "persons.list", people)
        # A person added through v1 is announced to v2 too.
        v1_person = client.v1.accounts.persons.create(acct.id, params={"first_name": "Bo", "last_name": "Director"})
        notif = notification(client, dest, path, "v2.core.account_person.created", v1_person.id)
        fetched = notif.fetch_related_object()
        check(isinstance(fetched, stripe.v2.core.AccountPerson), "the v1 person seen through v2",
              type(fetched).__name__)
        check_eq(fetched.given_name, "Bo", "its given_name", fetched)

        # Onboarding through the hosted page.
        link = client.v2.core.account_links.create({"account": acct.id, "use_case": {
            "type": "account_onboarding",
            "account_onboarding": {"configurations": ["merchant", "recipient"],
                                   "refresh_url": "https://platform.example/refresh",
                                   "return_url": "https://platform.example/return"}}})
        check(isinstance(link, stripe.v2.core.AccountLink), "a stripe.v2.core.AccountLink", type(link).__name__)
        check(link.expires_at > link.created, "expires after it is created", link)
        submit_onboarding(link.url, "https://platform.example/return")
        notif = notification(client, dest, path, "v2.core.account_link.returned", None)
        returned = notif.fetch_event()
        check_eq(returned.data.account_id, acct.id, "returned: data.account_id", returned)
        check_eq(returned.data.use_case, "account_onboarding", "returned: data.use_case", returned)
        check_eq(sorted(returned.data.configurations), ["merchant", "recipient"], "returned: configurations",
                 returned)
        notification(client, dest, path, "v2.core.account[requirements].updated", acct.id)
        notification(client, dest, path,
                     "v2.core.account[configuration.merchant].capability_status_updated", acct.id)
        onboarded = client.v2.core.accounts.retrieve(acct.id, {"include": ["configuration.merchant",
                                                                           "requirements"]})
        check_eq(onboarded.configuration.merchant.capabilities.card_payments.status, "active",
                 "card_payments after onboarding", onboarded.configuration.merchant)
        check_eq(onboarded.requirements.entries, [], "nothing due after onboarding", onboarded.requirements)

        closed = client.v2.core.accounts.close(acct.id, {"applied_configurations": ["merchant", "recipient"]})
        check_eq(closed.closed, True, "closed", closed)
        notification(client, dest, path, "v2.core.account.closed", acct.id)
        open_ids = [a.id for a in client.v2.core.accounts.list().auto_paging_iter()]
        check(acct.id not in open_ids, "a closed account is not listed by default", open_ids)
        closed_ids = [a.id for a in client.v2.core.accounts.list({"closed": True, "limit": 1}).auto_paging_iter()]
        check(acct.id in closed_ids and len(closed_ids) == len(set(closed_ids)), "closed=true lists it", closed_ids)
        e = expect_error(stripe.PermissionError,
                         lambda: client.v1.customers.list(options={"stripe_account": acct.id}),
                         "Stripe-Account of a closed account")
        check_eq(e.http_status, 403, "closed: http_status", error_summary(e))
        e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.accounts.close(acct.id),
                         "closing twice")
        check_eq(e.http_status, 400, "closing twice: http_status", error_summary(e))
    finally:
        client.v2.core.event_destinations.delete(dest.id)


def test_v2_accounts_bad_input_names_the_parameter():
    client = new_client()
    cases = [
        ({"dashboard": "bogus"}, "dashboard"),
        ({"include": ["bogus"]}, "include"),
        ({"identity": {"entity_type": "robot"}}, "identity[entity_type]"),
        ({"defaults": {"responsibilities": {"fees_collector": "nobody"}}},
         "defaults[responsibilities][fees_collector]"),
        ({"surprise": "!"}, "surprise"),
    ]
    for params, param in cases:
        e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.accounts.create(params),
                         "create with %s" % params)
        check_eq((e.http_status, e.param), (400, param), "%s: 400 naming it" % param, error_summary(e))
    e = expect_error(stripe.InvalidRequestError, lambda: client.v2.core.accounts.retrieve("acct_missing"),
                     "an unknown account")
    check_eq(e.http_status, 404, "unknown account: http_status", error_summary(e))
    acct = client.v2.core.accounts.create({"display_name": "Closing Co"})
    e = expect_error(stripe.InvalidRequestError,
                     lambda: client.v2.core.accounts.close(acct.id, {"applied_configurations": ["merchant"]}),
                     "closing a configuration the account lacks")
    check_eq((e.http_status, e.param), (400, "applied_configurations"), "close: 400 naming it", error_summary(e))


TESTS = [
    test_v2_accounts_thin_events_onboarding_and_close,
    test_v2_accounts_bad_input_names_the_parameter,
]


if __name__ == "__main__":
    sys.exit(sb.main(only={t.__name__ for t in TESTS}))
