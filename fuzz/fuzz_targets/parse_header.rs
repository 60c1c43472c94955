//! Arbitrary bytes as a `Stripe-Signature` header (and, split at the first
//! NUL, a payload): parsing and verifying must never panic, and whatever
//! parses must be consistent with what verification reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_receiver::{WebhookError, generate_test_header, parse_header, verify_header_at};

const SECRET: &str = "whsec_fuzz";

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };

    let parsed = parse_header(header);
    let verified = verify_header_at(payload, header, SECRET, 300, 1_700_000_000);
    match (&parsed, &verified) {
        // Verification parses first: its parse errors are exactly the parser's.
        (Err(p), Err(v)) if !header.is_empty() => assert_eq!(p, v),
        (Err(_), Err(WebhookError::MissingHeader)) => assert!(header.is_empty()),
        (Err(e), Ok(())) => panic!("verified a header that does not parse: {e}"),
        (Ok(h), _) => {
            assert!(!h.v1.is_empty());
            // Signing with the parsed timestamp must verify (no age check).
            let good = generate_test_header(payload, SECRET, h.timestamp);
            assert_eq!(verify_header_at(payload, &good, SECRET, 0, 0), Ok(()));
        }
        _ => {}
    }
    // Roll-over: the same header with a valid v1 appended must verify.
    if let Ok(h) = parsed {
        let good = generate_test_header(payload, SECRET, h.timestamp);
        let sig = good.split_once(",v1=").map(|(_, s)| s).unwrap_or_default();
        let rolled = format!("{header},v1={sig}");
        if parse_header(&rolled).map(|r| r.timestamp) == Ok(h.timestamp) {
            assert_eq!(verify_header_at(payload, &rolled, SECRET, 0, 0), Ok(()));
        }
    }
});
