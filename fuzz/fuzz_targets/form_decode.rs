//! Arbitrary bytes as a v1 request body or query string: the decoder must
//! never panic or overflow the stack (the fault probe's 10 KB request of
//! nested brackets aborted the server), and what it accepts must survive a
//! round trip through the encoder the CLI and tests use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::form::{self, MAX_DEPTH, Params};

fuzz_target!(|data: &[u8]| {
    // The server refuses a body that is not UTF-8 before decoding it.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    // A v2 query's repeated bare keys become arrays first: decoding the
    // rewritten string must not panic and stays within the same bounds.
    if let Ok(map) = form::decode(&form::repeated_as_arrays(input)) {
        assert!(depth(&map) <= MAX_DEPTH + 1, "v2 query nesting beyond the bound");
    }
    let decoded = form::decode(input);
    // `Params` reads the same tree; its errors must be the decoder's.
    match (Params::parse(input), &decoded) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(&a, b),
        (a, b) => panic!("Params::parse {a:?} but decode {b:?}"),
    }
    let Ok(map) = decoded else { return };
    assert!(depth(&map) <= MAX_DEPTH + 1, "nesting beyond the bound");
    let again = form::decode(&form::encode(&map)).expect("an encoded tree decodes");
    assert_eq!(
        form::decode(&form::encode(&again)).as_ref(),
        Ok(&again),
        "encode/decode reaches a fixed point"
    );
});

fn depth(map: &form::Map) -> usize {
    fn value(v: &form::Value) -> usize {
        match v {
            form::Value::Str(_) => 0,
            form::Value::Map(m) => depth(m),
            form::Value::List(items) => 1 + items.iter().map(value).max().unwrap_or(0),
        }
    }
    1 + map.values().map(value).max().unwrap_or(0)
}
