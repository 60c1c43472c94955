//! API v2's list conventions: `{data, next_page_url, previous_page_url}`,
//! where each page URL is a path (the SDKs refuse full URLs) carrying every
//! parameter of the list and an opaque `page` token, since the SDKs follow
//! it without resending their own parameters.

use serde_json::{Value, json};
use switchboard_core::form::{self, Params};
use switchboard_store::{Page, PageRequest};

use crate::error::ApiError;

/// Page tokens: the id a page starts after or ends before.
const AFTER: &str = "after_";
const BEFORE: &str = "before_";

/// `limit` (1–100, default 20) and `page` (a token from a page URL).
pub fn page_request(params: &mut Params) -> Result<PageRequest, ApiError> {
    let mut page = PageRequest {
        limit: super::limit(params, 20)?,
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
    super::cursor_named("page", e)
}

/// The list body. `extra` are the list's own parameters (`types`,
/// `created[gte]`), repeated in the page URLs as the SDKs spell them
/// (`types[0]=…`); `id_of` names an item (for the tokens).
pub fn list_json<T>(
    path: &str,
    request: &PageRequest,
    extra: &form::Map,
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
        let mut query = extra.clone();
        query.insert("limit".into(), form::Value::Str(request.limit.to_string()));
        query.insert("page".into(), form::Value::Str(token));
        format!("{path}?{}", form::encode(&query))
    };
    json!({
        "data": page.data.into_iter().map(render).collect::<Vec<_>>(),
        "next_page_url": next.map(|id| url(format!("{AFTER}{id}"))),
        "previous_page_url": previous.map(|id| url(format!("{BEFORE}{id}"))),
    })
}

/// A list of strings as a query parameter.
pub fn list(values: &[String]) -> form::Value {
    form::Value::List(values.iter().cloned().map(form::Value::Str).collect())
}
