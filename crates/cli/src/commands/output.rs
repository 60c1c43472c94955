//! How client commands print: aligned tables for people, JSON for programs.
//!
//! The rule: `--format` decides; without it, tables when stdout is a terminal
//! and JSON otherwise. Colour only ever reaches a terminal (anstream strips it).

use std::io::{IsTerminal as _, Write as _};

use anstyle::Style;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns (a list) or name/value lines (one object).
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format [default: table when stdout is a terminal, json otherwise].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
}

impl OutputArgs {
    pub fn resolve(&self) -> Format {
        self.format.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Json
            }
        })
    }
}

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

/// Writes one line to stdout, colour stripped unless it is a terminal.
pub fn line(text: &str) {
    let mut out = anstream::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes one line to stderr, colour stripped unless it is a terminal.
pub fn status(text: &str) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{text}");
}

pub fn print_json(v: &Value) {
    line(&serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Local time as the Stripe CLI prints it: `2021-12-06 17:29:27`.
pub fn local_time(unix: i64) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => unix.to_string(),
    }
}

pub fn now_local() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A field as a table cell: strings bare, `null` empty, lists joined, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Prints rows under a bold header, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let header = render(&mut headers.iter().copied());
    line(&format!("{BOLD}{header}{BOLD:#}"));
    for row in rows {
        line(&render(&mut row.iter().map(String::as_str)));
    }
}

/// A table column: its header and how an item's cell is rendered.
pub type Column = (&'static str, fn(&Value) -> String);

/// A list object as a table of `columns`, or as JSON.
pub fn list(v: &Value, format: Format, columns: &[Column]) {
    if format == Format::Json {
        return print_json(v);
    }
    let data = v["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    if data.is_empty() {
        status("(none)");
        return;
    }
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = data
        .iter()
        .map(|item| columns.iter().map(|(_, f)| f(item)).collect())
        .collect();
    table(&headers, &rows);
    if v["has_more"] == true
        && let Some(last) = data.last().and_then(|d| d["id"].as_str())
    {
        status(&format!("(more: --starting-after {last})"));
    }
}

/// One object: name/value lines of its top-level fields, or JSON.
pub fn object(v: &Value, format: Format) {
    let Some(map) = v.as_object().filter(|_| format == Format::Table) else {
        return print_json(v);
    };
    let rows: Vec<Vec<String>> = map
        .iter()
        .map(|(k, v)| {
            let value = match (k.as_str(), v) {
                ("created", Value::Number(n)) => n.as_i64().map_or(n.to_string(), local_time),
                _ => cell(v),
            };
            vec![k.clone(), value]
        })
        .collect();
    let width = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    for r in rows {
        let pad = " ".repeat(width - r[0].chars().count() + 2);
        line(&format!("{BOLD}{}{BOLD:#}{pad}{}", r[0], r[1]));
    }
}
