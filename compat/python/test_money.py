"""stripe-python 16.1.0 driving Switchboard's money movement and onboarding:
destination and direct charges with fees, refunds that reverse transfers,
separate transfers and reversals, application fee refunds, payment methods,
setup intents, manual capture with an incremented authorization, disputes
and their evidence, top-ups, cash balances, payouts that arrive as the test
clock moves, Account Links into the hosted onboarding page, capabilities,
login links, account sessions and OAuth. Every object comes back as the
SDK's own class, and the webhooks it causes arrive signed.

Run by test_stripe_python.py (its TESTS include these).
"""

import html.parser
import sys
import urllib.parse
import urllib.request

import stripe

sys.dont_write_bytecode = True
import test_stripe_python as sb  # noqa: E402
from test_connect import (  # noqa: E402
    TWO_DAYS,
    advance_clock,
    as_account,
    connect_endpoint,
    onboarded_account,
    platform_endpoint,
    wait_connect_event,
)
from test_stripe_python import (  # noqa: E402
    check,
    check_eq,
    delete_endpoints_quietly,
    error_summary,
    expect_error,
    field,
    new_client,
    unique,
)


def usd(balance, key="available"):
    return sum(x.amount for x in getattr(balance, key) if x.currency == "usd")


def reconcile(client, opts=None):
    """An account's balance is the sum of its balance transactions' net."""
    bal = client.v1.balance.retrieve(options=opts or {})
    txns = client.v1.balance_transactions.list(params={"limit": 100}, options=opts or {})
    net = sum(t.net for t in txns.auto_paging_iter() if t.currency == "usd")
    check_eq(usd(bal) + usd(bal, "pending"), net, "balance = sum of balance transactions", bal)
    return net


class _Form(html.parser.HTMLParser):
    """The inputs of a page's form (what a browser would submit)."""

    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = "on"
            else:
                self.fields[a["name"]] = a.get("value") or ""
        if tag == "option" and "selected" in a:
            self.fields["business_type"] = a.get("value")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browse(url, form=None):
    """GET (or POST `form` to) a hosted page; (status, location, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, r.headers.get("location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("location"), e.read().decode()


def submit_onboarding(url, return_url):
    """Opens a hosted onboarding link and submits its pre-filled form, as a
    browser would; checks the user is sent back to `return_url`."""
    status, _, page = browse(url)
    check_eq(status, 200, "the onboarding page opens", page[:200])
    form = _Form()
    form.feed(page)
    status, location, _ = browse(url, form.fields)
    check_eq((status, location), (303, return_url), "submitted: back to return_url")


def test_money_destination_charges_refunds_and_transfers():
    client = new_client()
    path = "/" + unique("money-platform")
    we = platform_endpoint(client, path, ["refund.created", "charge.refunded", "transfer.created", "transfer.reversed",
                                          "application_fee.created", "application_fee.refunded"])
    cpath = "/" + unique("money-connect")
    cwe = connect_endpoint(client, cpath, ["charge.succeeded", "balance.available"])
    try:
        acct = onboarded_account(client)
        pi = client.v1.payment_intents.create(params={
            "amount": 10000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": True,
            "application_fee_amount": 1000, "transfer_data": {"destination": acct.id},
        })
        check(isinstance(pi, stripe.PaymentIntent), "a PaymentIntent", type(pi).__name__)
        check_eq(pi.status, "succeeded", "destination charge", pi)
        charge = client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["transfer"]})
        tr = charge.transfer
        check(isinstance(tr, stripe.Transfer), "charge.transfer expands to a Transfer", type(tr).__name__)
        check_eq((tr.destination, tr.amount, tr.source_transaction), (acct.id, 9000, charge.id), "the automatic transfer", tr)
        wait_connect_event(path, we.secret, "transfer.created", None, tr.id)
        # The connected account sees its payment (py_…) and the money, net of nothing: the platform pays Stripe's fee.
        acct_bal = client.v1.balance.retrieve(options=as_account(acct.id))
        check_eq(usd(acct_bal), 9000, "the destination's available balance", acct_bal)

        refund = client.v1.refunds.create(params={"charge": charge.id, "amount": 5000, "reverse_transfer": True})
        check(isinstance(refund, stripe.Refund), "a Refund", type(refund).__name__)
        check_eq((refund.status, refund.amount), ("succeeded", 5000), "partial refund", refund)
        wait_connect_event(path, we.secret, "refund.created", None, refund.id)
        wait_connect_event(path, we.secret, "charge.refunded", None, charge.id)
        reversals = client.v1.transfers.reversals.list(tr.id)
        rev = reversals.data[0]
        check(isinstance(rev, stripe.TransferReversal), "a TransferReversal", type(rev).__name__)
        check_eq(rev.amount, 4500, "reverse_transfer takes back the refunded share", rev)
        check_eq(usd(client.v1.balance.retrieve(options=as_account(acct.id))), 4500, "destination after the reversal")

        # Separate charges and transfers: a charge on the platform funds them.
        client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd",
                                                 "payment_method": "pm_card_bypassPending", "confirm": True})
        sep = client.v1.transfers.create(params={"amount": 1200, "currency": "usd", "destination": acct.id,
                                                 "transfer_group": "order-42"})
        check_eq(sep.transfer_group, "order-42", "transfer_group", sep)
        back = client.v1.transfers.reversals.create(sep.id, params={"amount": 200})
        check_eq(back.amount, 200, "a partial reversal", back)
        wait_connect_event(path, we.secret, "transfer.reversed", None, sep.id)
        e = expect_error(stripe.InvalidRequestError,
                         lambda: client.v1.transfers.create(params={"amount": 10 ** 9, "currency": "usd", "destination": acct.id}),
                         "a transfer beyond the available balance")
        check_eq((e.http_status, e.code), (400, "balance_insufficient"), "balance_insufficient", error_summary(e))

        # A direct charge with a fee: the platform collects an application fee, then refunds part of it.
        direct = client.v1.payment_intents.create(
            params={"amount": 5000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": True,
                    "application_fee_amount": 300},
            options=as_account(acct.id),
        )
        fees = [f for f in client.v1.application_fees.list(params={"charge": direct.latest_charge}).auto_paging_iter()]
        check_eq(len(fees), 1, "one application fee for the direct charge", fees)
        fee = fees[0]
        check(isinstance(fee, stripe.ApplicationFee), "an ApplicationFee", type(fee).__name__)
        check_eq((fee.amount, fee.account), (300, acct.id), "the fee and whose charge paid it", fee)
        wait_connect_event(path, we.secret, "application_fee.created", None, fee.id)
        fr = client.v1.application_fees.refunds.create(fee.id, params={"amount": 100})
        check(isinstance(fr, stripe.ApplicationFeeRefund), "an ApplicationFeeRefund", type(fr).__name__)
        check_eq(client.v1.application_fees.retrieve(fee.id).amount_refunded, 100, "amount_refunded")
        reconcile(client)
        reconcile(client, as_account(acct.id))
    finally:
        delete_endpoints_quietly(client, [we.id, cwe.id])


def test_money_payment_methods_setup_capture_disputes_topups_and_cash():
    client = new_client()
    path = "/" + unique("money-payments")
    we = platform_endpoint(client, path, ["setup_intent.succeeded", "payment_intent.amount_capturable_updated",
                                          "charge.captured", "charge.dispute.created", "charge.dispute.closed",
                                          "topup.succeeded", "payment_intent.succeeded", "payout.paid"])
    try:
        cus = client.v1.customers.create(params={"name": "Money"})
        pm = client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
        check(isinstance(pm, stripe.PaymentMethod), "a PaymentMethod", type(pm).__name__)
        attached = client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
        check_eq(attached.customer, cus.id, "attached", attached)
        listed = client.v1.payment_methods.list(params={"customer": cus.id, "type": "card"})
        check_eq([p.id for p in listed.data], [pm.id], "the customer's payment methods", listed)
        seti = client.v1.setup_intents.create(params={"customer": cus.id, "payment_method": pm.id, "confirm": True,
                                                      "usage": "off_session"})
        check(isinstance(seti, stripe.SetupIntent), "a SetupIntent", type(seti).__name__)
        check_eq(seti.status, "succeeded", "setup succeeded", seti)
        wait_connect_event(path, we.secret, "setup_intent.succeeded", None, seti.id)
        src = client.v1.customers.payment_sources.create(cus.id, params={"source": "tok_mastercard"})
        check(isinstance(src, stripe.Card), "a customer source is a Card", type(src).__name__)

        held = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                        "payment_method": pm.id, "capture_method": "manual",
                                                        "confirm": True})
        check_eq(held.status, "requires_capture", "an authorization", held)
        grown = client.v1.payment_intents.increment_authorization(held.id, params={"amount": 2500})
        check_eq(grown.amount_capturable, 2500, "incremented", grown)
        done = client.v1.payment_intents.capture(held.id, params={"amount_to_capture": 2200})
        check_eq((done.status, done.amount_received), ("succeeded", 2200), "partial capture", done)
        wait_connect_event(path, we.secret, "charge.captured", None, done.latest_charge)

        disputed = client.v1.payment_intents.create(params={"amount": 3000, "currency": "usd",
                                                            "payment_method": "pm_card_createDispute", "confirm": True})
        ev = wait_connect_event(path, we.secret, "charge.dispute.created", None,
                                where=lambda j: j["data"]["object"]["charge"] == disputed.latest_charge)
        dispute = ev.data.object
        check(isinstance(dispute, stripe.Dispute), "a Dispute", type(dispute).__name__)
        won = client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"},
                                                            "submit": True})
        check(isinstance(won, stripe.Dispute), "disputes.update returns a Dispute", type(won).__name__)
        closed = wait_connect_event(path, we.secret, "charge.dispute.closed", None, dispute.id)
        check_eq(closed.data.object.status, "won", "winning evidence wins", closed)

        topup = client.v1.topups.create(params={"amount": 5000, "currency": "usd", "description": "float"})
        check(isinstance(topup, stripe.Topup), "a Topup", type(topup).__name__)
        wait_connect_event(path, we.secret, "topup.succeeded", None, topup.id)

        wire = client.v1.payment_intents.create(params={
            "amount": 4000, "currency": "usd", "customer": cus.id, "payment_method_types": ["customer_balance"],
            "payment_method_data": {"type": "customer_balance"}, "confirm": True,
            "payment_method_options": {"customer_balance": {"funding_type": "bank_transfer"}},
        })
        check_eq(wire.status, "requires_action", "waiting for the bank transfer", wire)
        client.v1.test_helpers.customers.fund_cash_balance(cus.id, params={"amount": 4000, "currency": "usd"})
        wait_connect_event(path, we.secret, "payment_intent.succeeded", None, wire.id)

        # The platform pays itself out; it arrives two days later.
        avail = usd(client.v1.balance.retrieve())
        po = client.v1.payouts.create(params={"amount": min(avail, 1000), "currency": "usd"})
        check_eq(po.status, "pending", "pending until it arrives", po)
        advance_clock(client, TWO_DAYS)
        wait_connect_event(path, we.secret, "payout.paid", None, po.id)
        reconcile(client)
    finally:
        delete_endpoints_quietly(client, [we.id])


def test_onboarding_capabilities_login_links_sessions_and_oauth():
    client = new_client()
    cpath = "/" + unique("onboarding")
    cwe = connect_endpoint(client, cpath, ["account.updated", "capability.updated", "account.application.authorized"])
    try:
        acct = client.v1.accounts.create(params={
            "type": "express", "country": "US",
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        })
        caps = client.v1.accounts.capabilities.list(acct.id)
        check(all(isinstance(c, stripe.Capability) for c in caps.data), "Capability objects", caps)
        check_eq(sorted((c.id, c.status) for c in caps.data),
                 [("card_payments", "inactive"), ("transfers", "inactive")], "requested, not yet active", caps)
        e = expect_error(stripe.InvalidRequestError, lambda: client.v1.accounts.login_links.create(acct.id),
                         "a login link before onboarding")
        check_eq(e.http_status, 400, "login link refused", error_summary(e))

        link = client.v1.account_links.create(params={"account": acct.id, "type": "account_onboarding",
                                                      "refresh_url": "https://platform.example/refresh",
                                                      "return_url": "https://platform.example/return"})
        check(isinstance(link, stripe.AccountLink), "an AccountLink", type(link).__name__)
        submit_onboarding(link.url, "https://platform.example/return")
        status, location, _ = browse(link.url)
        check_eq((status, location), (303, "https://platform.example/refresh"), "a used link refreshes")
        ev = wait_connect_event(cpath, cwe.secret, "capability.updated", acct.id, "card_payments")
        check(isinstance(ev.data.object, stripe.Capability), "capability.updated carries a Capability", ev)
        check_eq(ev.data.object.status, "active", "the capability turned active", ev)
        wait_connect_event(cpath, cwe.secret, "account.updated", acct.id,
                           where=lambda j: j["data"]["object"]["charges_enabled"] is True)
        cap = client.v1.accounts.capabilities.retrieve(acct.id, "transfers")
        check_eq(cap.status, "active", "capabilities.retrieve", cap)

        login = client.v1.accounts.login_links.create(acct.id)
        check(isinstance(login, stripe.LoginLink), "a LoginLink", type(login).__name__)
        status, _, page = browse(login.url)
        check(status == 200 and acct.id in page, "the Express Dashboard opens", status)
        session = client.v1.account_sessions.create(params={"account": acct.id,
                                                            "components": {"payments": {"enabled": True}}})
        check(isinstance(session, stripe.AccountSession), "an AccountSession", type(session).__name__)
        check_eq(session.components.payments.enabled, True, "the component asked for", session)

        # OAuth: the SDK builds the authorize URL, the developer approves, the SDK trades the code.
        client_id = field(cwe, "application")
        url = client.oauth.authorize_url(params={"client_id": client_id, "scope": "read_write",
                                                 "redirect_uri": "https://platform.example/oauth", "state": "xyz"})
        status, _, page = browse(url)
        check_eq(status, 200, "the authorize page", page[:200])
        form = _Form()
        form.feed(page)
        form.fields["decision"] = "approve"
        status, location, _ = browse(url.split("?")[0], form.fields)
        check(status == 303 and "code=ac_" in location and location.endswith("state=xyz"), "redirected with a code", location)
        code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
        token = client.oauth.token(params={"grant_type": "authorization_code", "code": code})
        check_eq((token.scope, token.token_type), ("read_write", "bearer"), "the token", token)
        user = token.stripe_user_id
        wait_connect_event(cpath, cwe.secret, "account.application.authorized", user)
        check_eq(client.v1.accounts.retrieve(user).type, "standard", "a connected Standard account")
        e = expect_error(stripe.oauth_error.InvalidGrantError,
                         lambda: client.oauth.token(params={"grant_type": "authorization_code", "code": code}),
                         "a used code")
        check_eq(e.code, "invalid_grant", "invalid_grant", error_summary(e))
    finally:
        delete_endpoints_quietly(client, [cwe.id])


TESTS = [
    test_money_destination_charges_refunds_and_transfers,
    test_money_payment_methods_setup_capture_disputes_topups_and_cash,
    test_onboarding_capabilities_login_links_sessions_and_oauth,
]
