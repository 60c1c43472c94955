//! Arbitrary bytes as a correctly signed webhook body: `construct_event`
//! must never panic, must accept only JSON objects carrying an event's
//! fields, and what it accepts must be the body's own values.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchboard_receiver::{WebhookError, construct_event_at, generate_test_header};

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|payload: &[u8]| {
    let header = generate_test_header(payload, SECRET, NOW);
    match construct_event_at(payload, &header, SECRET, 300, NOW) {
        Ok(event) => {
            // Read as raw values: a number beyond f64 inside `data` (`1e999`)
            // is valid JSON the SDKs accept (as infinity), which a
            // `serde_json::Value` refuses to hold.
            let raw: HashMap<String, Box<RawValue>> =
                serde_json::from_slice(payload).expect("an accepted event is a JSON object");
            let field = |k: &str| {
                raw.get(k)
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            };
            assert_eq!(field("id").as_deref(), Some(event.id.as_str()));
            assert_eq!(field("type").as_deref(), Some(event.event_type.as_str()));
            // The object is parsed on demand; malformed ones are an error, not a panic.
            let _ = event.object();
        }
        Err(WebhookError::InvalidPayload(_)) => {}
        Err(e) => panic!("a correctly signed body failed verification: {e}"),
    }
    // One byte changed: never verified.
    if let Some(first) = payload.first() {
        let mut tampered = payload.to_vec();
        tampered[0] = first.wrapping_add(1);
        assert!(matches!(
            construct_event_at(&tampered, &header, SECRET, 300, NOW),
            Err(WebhookError::SignatureMismatch)
        ));
    }
});
