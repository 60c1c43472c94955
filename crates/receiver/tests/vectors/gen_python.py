#!/usr/bin/env python3
"""Step 1 of 2: define the signature vectors and record stripe-python's verdicts.

Writes crates/receiver/tests/vectors.json: one entry per case with its inputs
(payload, header, secret, now, tolerance) and `python`, the verdict of
stripe-python's `stripe.WebhookSignature.verify_header` on those inputs.
Step 2, gen_node.mjs, adds stripe-node's verdict and the `expected` verdict
that tests/vectors.rs holds switchboard-receiver to.

Run from the repository root, with the venv that scripts/test.sh prepares:

    compat/.venv/bin/python crates/receiver/tests/vectors/gen_python.py
    node crates/receiver/tests/vectors/gen_node.mjs

Everything is deterministic: "now" is fixed per case (time.time is patched,
stripe-python has no other way to set it), so the file only changes when the
cases or an SDK's behaviour change.

A verdict is {"ok": true} or {"ok": false, "kind": KIND}, KIND one of
missing_header, missing_secret, malformed_header, no_signatures,
signature_mismatch, timestamp_outside_tolerance (the names of
switchboard_receiver::WebhookError's variants), or "other: <message>" for an
exception that is not a SignatureVerificationError.

`follow` names the SDK switchboard-receiver agrees with on a case where the
two SDKs disagree; it is required exactly there (gen_node.mjs checks).
"""

import hashlib
import hmac
import json
import os
import sys
import time

import stripe

NOW = 1_700_000_000
SECRET = "whsec_vectors_primary_0123456789abcdef"
OLD_SECRET = "whsec_vectors_rolled_fedcba9876543210"
OTHER_SECRET = "whsec_vectors_someone_else"

PAYLOAD = (
    '{\n  "id": "evt_1VectorsAbCdEfGhIjKlMnOp",\n  "object": "event",\n'
    '  "account": "acct_1VectorsAbCdEfGhIjKlMn",\n  "api_version": "2025-03-31.basil",\n'
    '  "created": 1699999990,\n  "data": {\n    "object": {\n'
    '      "id": "po_1VectorsAbCdEfGhIjKlMnOp",\n      "object": "payout",\n'
    '      "amount": 1100,\n      "currency": "usd",\n      "failure_code": "account_closed"\n'
    '    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n'
    '  "type": "payout.failed"\n}'
)
UNICODE_PAYLOAD = '{"id":"evt_u","object":"event","data":{"object":{"name":"Caf\u00e9 \u00fcber \U0001f600 \u4e2d\u6587"}}}'


def sig(payload: str, secret: str, t) -> str:
    """v1 signature: HMAC-SHA256 of "{t}.{payload}" keyed by the whole secret."""
    signed = f"{t}.{payload}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def case(name, description, header, payload=PAYLOAD, secret=SECRET, now=NOW, tolerance=300, follow=None):
    return {
        "name": name,
        "description": description,
        "payload": payload,
        "header": header,
        "secret": secret,
        "now": now,
        "tolerance": tolerance,
        "follow": follow,
    }


T = NOW - 10
S = sig(PAYLOAD, SECRET, T)

CASES = [
    case("valid", "a fresh header signed with the secret", f"t={T},v1={S}"),
    case(
        "valid_unicode_payload",
        "non-ASCII payload: the HMAC covers its UTF-8 bytes",
        f"t={T},v1={sig(UNICODE_PAYLOAD, SECRET, T)}",
        payload=UNICODE_PAYLOAD,
    ),
    case(
        "rolled_secret_new_verifier",
        "secret being rolled: two v1 (new first), verified with the new secret",
        f"t={T},v1={S},v1={sig(PAYLOAD, OLD_SECRET, T)}",
    ),
    case(
        "rolled_secret_old_verifier",
        "secret being rolled: two v1 (new first), verified with the old secret",
        f"t={T},v1={S},v1={sig(PAYLOAD, OLD_SECRET, T)}",
        secret=OLD_SECRET,
    ),
    case(
        "wrong_secret",
        "signed with another endpoint's secret",
        f"t={T},v1={sig(PAYLOAD, OTHER_SECRET, T)}",
    ),
    case(
        "tampered_payload",
        "the body changed after signing (amount 1100 -> 9100)",
        f"t={T},v1={S}",
        payload=PAYLOAD.replace('"amount": 1100', '"amount": 9100'),
    ),
    case(
        "reformatted_payload",
        "the body re-serialized (whitespace only) after signing",
        f"t={T},v1={S}",
        payload=json.dumps(json.loads(PAYLOAD), separators=(",", ":")),
    ),
    case(
        "tampered_timestamp",
        "t changed after signing",
        f"t={T + 1},v1={S}",
    ),
    case(
        "expired_timestamp",
        "signed 301 s before now, tolerance 300",
        f"t={NOW - 301},v1={sig(PAYLOAD, SECRET, NOW - 301)}",
    ),
    case(
        "age_equals_tolerance",
        "signed exactly 300 s before now, tolerance 300: still accepted",
        f"t={NOW - 300},v1={sig(PAYLOAD, SECRET, NOW - 300)}",
    ),
    case(
        "expired_but_tolerance_zero",
        "a day old, tolerance 0 disables the age check",
        f"t={NOW - 86400},v1={sig(PAYLOAD, SECRET, NOW - 86400)}",
        tolerance=0,
    ),
    case(
        "expired_and_wrong_signature",
        "old and wrongly signed: the signature is checked first",
        f"t={NOW - 86400},v1={sig(PAYLOAD, OTHER_SECRET, NOW - 86400)}",
    ),
    case(
        "future_timestamp",
        "signed an hour in the future: only old timestamps are rejected",
        f"t={NOW + 3600},v1={sig(PAYLOAD, SECRET, NOW + 3600)}",
    ),
    case(
        "negative_tolerance",
        "tolerance -1: stripe-python rejects (truthy tolerance, t < now + 1), "
        "stripe-node skips the age check (tolerance > 0 only); we treat tolerance <= 0 as 'no age check'",
        f"t={T},v1={S}",
        tolerance=-1,
        follow="node",
    ),
    case("missing_v1", "a timestamp and no signature", f"t={T}"),
    case("v0_only", "only the v0 (test-mode legacy) scheme", f"t={T},v0={S}"),
    case(
        "v0_and_v1",
        "a bogus v0 next to a valid v1: v0 is ignored",
        f"t={T},v0=0000,v1={S}",
    ),
    case(
        "other_scheme_only",
        "an unknown scheme only",
        f"t={T},v2={S}",
    ),
    case(
        "malformed_t",
        "t is not a number: stripe-python cannot extract it; stripe-node parses NaN, signs "
        "'NaN.{payload}' and so reports a mismatch",
        f"t=abc,v1={S}",
        follow="python",
    ),
    case("missing_t", "a signature and no timestamp", f"v1={S}"),
    case("empty_header", "an empty Stripe-Signature header", ""),
    case(
        "uppercase_hex",
        "the right signature in uppercase hex: the comparison is of strings",
        f"t={T},v1={S.upper()}",
    ),
    case(
        "space_after_comma",
        "'t=..., v1=...': the key is ' v1', so no v1 signature",
        f"t={T}, v1={S}",
    ),
    case(
        "space_before_t",
        "'v1=..., t=...': the key is ' t', so no timestamp",
        f"v1={S}, t={T}",
    ),
    case(
        "whitespace_in_t_value",
        "'t= 123': both SDKs' integer parsers skip leading whitespace",
        f"t= {T},v1={S}",
    ),
    case(
        "plus_sign_in_t",
        "'t=+123': both SDKs accept a leading '+'; the signed content is '123.'",
        f"t=+{T},v1={S}",
    ),
    case(
        "fractional_t",
        "'t=123.5': stripe-python's int() rejects it, stripe-node's parseInt reads 123",
        f"t={T}.5,v1={S}",
        follow="python",
    ),
    case(
        "duplicate_t_first_signed",
        "two t entries, the first one signed: stripe-python uses the first, stripe-node the last",
        f"t={T},t={T - 1},v1={S}",
        follow="python",
    ),
    case(
        "extra_equals_in_t",
        "'t=123=x': both SDKs take the text between the first and second '='",
        f"t={T}=x,v1={S}",
    ),
    case(
        "extra_equals_in_v1",
        "'v1=<sig>=': both SDKs take the text between the first and second '='",
        f"t={T},v1={S}=",
    ),
    case(
        "bare_t_item",
        "'t,t=123,...': stripe-python cannot read an item 't' without '=' (IndexError); "
        "stripe-node reads NaN, then the second t overrides it and the header verifies",
        f"t,t={T},v1={S}",
        follow="python",
    ),
    case(
        "bare_v1_item",
        "'...,v1,v1=<sig>': stripe-python cannot read an item 'v1' without '='; stripe-node "
        "compares against undefined and throws a TypeError",
        f"t={T},v1,v1={S}",
        follow="python",
    ),
    case("trailing_comma", "a trailing comma (empty item) is ignored", f"t={T},v1={S},"),
    case("short_signature", "a v1 that is not 64 hex digits", f"t={T},v1=deadbeef"),
    case(
        "blank_secret",
        "a secret of spaces: no secret was configured",
        f"t={T},v1={S}",
        secret="   ",
    ),
    case(
        "empty_payload",
        "an empty body, correctly signed, verifies (stripe-node refuses an empty *string* "
        "payload, but a raw body is a Buffer, and an empty Buffer passes)",
        f"t={T},v1={sig('', SECRET, T)}",
        payload="",
    ),
]

KINDS = [
    ("No Stripe-Signature header value was provided", "missing_header"),
    ("No webhook secret value was provided", "missing_secret"),
    ("Unable to extract timestamp and signatures from header", "malformed_header"),
    ("No signatures found with expected scheme", "no_signatures"),
    ("No signatures found matching the expected signature", "signature_mismatch"),
    ("Timestamp outside the tolerance zone", "timestamp_outside_tolerance"),
]


def verdict(c):
    real_time = time.time
    time.time = lambda: float(c["now"])
    try:
        stripe.WebhookSignature.verify_header(
            c["payload"].encode("utf-8"), c["header"], c["secret"], c["tolerance"]
        )
        return {"ok": True}
    except stripe.SignatureVerificationError as e:
        for prefix, kind in KINDS:
            if str(e.user_message or e).startswith(prefix):
                return {"ok": False, "kind": kind}
        return {"ok": False, "kind": "other: " + str(e)}
    except Exception as e:  # noqa: BLE001 - recorded, not hidden
        return {"ok": False, "kind": f"other: {type(e).__name__}: {e}"}
    finally:
        time.time = real_time


def main():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    out = {
        "about": "Stripe-Signature vectors with the official SDKs' verdicts; "
        "see tests/vectors/gen_python.py and tests/vectors.rs",
        "python_sdk": f"stripe-python {stripe.VERSION}",
        "vectors": [dict(c, python=verdict(c)) for c in CASES],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    for v in out["vectors"]:
        print(f'{v["name"]:32} python: {v["python"]}', file=sys.stderr)


if __name__ == "__main__":
    main()
