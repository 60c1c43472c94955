//! API v2's list conventions: `{data, next_page_url, previous_page_url}`,
//! where each page URL is a path (the SDKs refuse full URLs) carrying every
//! parameter of the list and an opaque `page` token, since the SDKs follow
//! it without resending their own parameters.

use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_store::{Page, PageRequest};

use crate::error::ApiError;

/// Page tokens: the id a page starts after or ends before.
const AFTER: &str = "after_";
const BEFORE: &str = "before_";

/// `limit` (1–100, default 20) and `page` (a token from a page URL).
pub fn page_request(params: &mut Params) -> Result<PageRequest, ApiError> {
    let limit = params.int("limit")?.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("Invalid limit: must be between 1 and 100, got {limit}"),
        ));
    }
    let mut page = PageRequest {
        limit: limit as usize,
        starting_after: None,
        ending_before: None,
        filters: Vec::new(),
    };
    match params.string("page")? {
        None => {}
        Some(t) if t.is_empty() => {}
        Some(t) => match (t.strip_prefix(AFTER), t.strip_prefix(BEFORE)) {
            (Some(id), _) if !id.is_empty() => page.starting_after = Some(id.to_owned()),
            (_, Some(id)) if !id.is_empty() => page.ending_before = Some(id.to_owned()),
            _ => {
                return Err(ApiError::invalid(
                    "page",
                    format!("Invalid page token: {t}"),
                ));
            }
        },
    }
    Ok(page)
}

/// A page token naming an object that is gone.
pub fn cursor_error(e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidRequest { message, code, .. } if code == Some("resource_missing") => {
            ApiError::InvalidRequest {
                message,
                code,
                param: Some("page".into()),
            }
        }
        other => other,
    }
}

/// The list body. `extra` are the list's own parameters (`types[0]`,
/// `created[gte]`), repeated in the page URLs; `id_of` names an item (for
/// the tokens).
pub fn list_json<T>(
    path: &str,
    request: &PageRequest,
    extra: &[(String, String)],
    page: Page<T>,
    render: impl Fn(T) -> Value,
    id_of: impl Fn(&T) -> String,
) -> Value {
    let (first, last) = (page.data.first().map(&id_of), page.data.last().map(&id_of));
    let backwards = request.ending_before.is_some();
    let (next, previous) = if backwards {
        (last, first.filter(|_| page.has_more))
    } else {
        (
            last.filter(|_| page.has_more),
            first.filter(|_| request.starting_after.is_some()),
        )
    };
    let url = |token: String| {
        let mut query = vec![
            ("limit".to_owned(), request.limit.to_string()),
            ("page".to_owned(), token),
        ];
        query.extend(extra.iter().cloned());
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{path}?{}", encoded.join("&"))
    };
    json!({
        "data": page.data.into_iter().map(render).collect::<Vec<_>>(),
        "next_page_url": next.map(|id| url(format!("{AFTER}{id}"))),
        "previous_page_url": previous.map(|id| url(format!("{BEFORE}{id}"))),
    })
}

/// A list parameter as the SDKs spell it in a query: `name[0]=…&name[1]=…`.
pub fn indexed(name: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{name}[{i}]"), v.clone()))
        .collect()
}

/// Percent-encodes a query component (brackets kept, as the SDKs send them).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'[' | b']' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
