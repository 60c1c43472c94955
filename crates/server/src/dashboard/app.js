// Switchboard's dashboard: plain JavaScript over the same API the SDKs use
// (`/v1/...` and `/switchboard/v1/...`), with the secret key the user signs
// in with kept in this tab's sessionStorage. No framework, no build step:
// the server embeds this file. Every element is built with `h()`, never from
// HTML strings, so no API value is ever parsed as markup.

const app = document.getElementById("app");
const KEY = "switchboard.key";
let timers = [];

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "testid") el.dataset.testid = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function key() { return sessionStorage.getItem(KEY); }
function live() { return (key() || "").startsWith("sk_live_"); }

/** Stripe's form encoding of a flat object; arrays as `name[]`. */
function form(params) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => body.append(`${k}[]`, x));
    else body.append(k, v);
  }
  return body;
}

async function api(method, path, params, account) {
  const headers = { Authorization: `Bearer ${key()}` };
  if (account) headers["Stripe-Account"] = account;
  let url = path;
  const init = { method, headers };
  if (method === "GET") {
    const q = form(params).toString();
    if (q) url += (url.includes("?") ? "&" : "?") + q;
  } else if (path.startsWith("/v2/")) {
    // API v2 takes JSON bodies.
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(params || {});
  } else {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    init.body = form(params);
  }
  const resp = await fetch(url, init);
  const json = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(json.error?.message || `HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return json;
}

function when(unix) {
  return unix ? new Date(unix * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC") : "—";
}

function every(ms, f) {
  f();
  timers.push(setInterval(f, ms));
}

function shell(active, ...content) {
  document.body.classList.toggle("live", live());
  const nav = (href, label) => h("a", { href, class: active === label ? "active" : null }, label);
  return h("div", {},
    h("header", {},
      h("span", { class: "brand" }, "Switchboard"),
      h("nav", {}, nav("#/webhooks", "Webhooks"), nav("#/events", "Events"), nav("#/accounts", "Connected accounts"), nav("#/logs", "Request log")),
      h("span", { class: "spacer" }),
      h("span", { class: `mode ${live() ? "live" : "test"}`, testid: "mode" }, live() ? "LIVE MODE" : "TEST MODE"),
      h("button", { onclick: () => { sessionStorage.removeItem(KEY); location.hash = "#/"; } }, "Sign out")),
    h("main", {}, ...content));
}

function failure(e) {
  return h("p", { class: "error", testid: "error" }, e.message);
}

// -- sign in -------------------------------------------------------------

function signIn() {
  const input = h("input", { type: "password", placeholder: "sk_test_… or sk_live_…", testid: "key", size: 40, autocomplete: "off" });
  const error = h("div");
  const submit = async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await api("GET", "/v1/webhook_endpoints", { limit: 1 });
      location.hash = "#/webhooks";
      route();
    } catch (e) {
      sessionStorage.removeItem(KEY);
      error.replaceChildren(failure(e));
    }
  };
  return h("form", { class: "card signin", onsubmit: submit },
    h("h1", {}, "Sign in to Switchboard"),
    h("p", { class: "muted" }, "With the platform's secret key: a test key shows test data, a live key live data."),
    h("label", {}, "Secret key", h("br"), input),
    error,
    h("button", { class: "primary", type: "submit", testid: "sign-in" }, "Sign in"));
}

// -- webhooks ------------------------------------------------------------

let catalog = null;
async function eventTypes() {
  if (!catalog) catalog = await (await fetch("/dashboard/catalog.json")).json();
  return catalog;
}

async function endpointHealth(id) {
  const attempts = await api("GET", `/switchboard/v1/webhook_endpoints/${id}/attempts`, { limit: 50 });
  const done = attempts.data;
  if (!done.length) return "no attempts yet";
  const ok = done.filter((a) => a.succeeded).length;
  const ms = done.map((a) => a.duration_ms).sort((a, b) => a - b);
  return `${Math.round((100 * ok) / done.length)}% of last ${done.length} · p50 ${ms[Math.floor(ms.length / 2)]} ms`;
}

function newEndpointForm(onCreated) {
  const url = h("input", { type: "url", placeholder: "https://example.com/webhooks", size: 50, required: true, testid: "endpoint-url" });
  const account = h("input", { type: "radio", name: "listen", value: "account", checked: true, testid: "listen-account" });
  const connect = h("input", { type: "radio", name: "listen", value: "connect", testid: "listen-connect" });
  const all = h("input", { type: "checkbox", checked: true, testid: "all-events" });
  const search = h("input", { type: "search", placeholder: "Search events…", testid: "event-search" });
  const list = h("div", { class: "catalog" });
  const chosen = new Set();
  const error = h("div");
  const draw = async () => {
    const types = await eventTypes();
    const q = search.value.trim();
    list.replaceChildren(...types.filter((t) => !q || t.includes(q)).slice(0, 200).map((t) => {
      const box = h("input", { type: "checkbox", checked: chosen.has(t), onchange: (e) => e.target.checked ? chosen.add(t) : chosen.delete(t) });
      return h("label", {}, box, " ", t);
    }));
  };
  search.addEventListener("input", draw);
  all.addEventListener("change", () => { list.hidden = search.hidden = all.checked; });
  list.hidden = search.hidden = true;
  draw();
  const submit = async (ev) => {
    ev.preventDefault();
    try {
      const events = all.checked ? ["*"] : [...chosen];
      await api("POST", "/v1/webhook_endpoints", { url: url.value, enabled_events: events, connect: connect.checked ? "true" : undefined });
      onCreated();
    } catch (e) {
      error.replaceChildren(failure(e));
    }
  };
  return h("form", { class: "card", onsubmit: submit, testid: "endpoint-form" },
    h("h2", {}, "Add an endpoint"),
    h("label", {}, "Endpoint URL", h("br"), url),
    h("div", {}, "Listen to",
      h("label", {}, account, " Events on your account"),
      h("label", {}, connect, " Events on Connected accounts")),
    h("label", {}, all, " All events"),
    search, list, error,
    h("div", { class: "row" }, h("button", { class: "primary", type: "submit", testid: "create-endpoint" }, "Add endpoint")));
}

async function webhooks() {
  const body = h("div");
  const view = shell("Webhooks", h("div", { class: "row" }, h("h1", {}, "Webhooks"), h("span", { class: "spacer" }),
    h("button", { class: "primary", testid: "new-endpoint", onclick: () => formSlot.replaceChildren(newEndpointForm(() => { formSlot.replaceChildren(); load(); })) }, "Add endpoint")));
  const formSlot = h("div");
  view.querySelector("main").append(formSlot, body);
  app.replaceChildren(view);
  async function load() {
    try {
      const endpoints = await api("GET", "/v1/webhook_endpoints", { limit: 100 });
      const rows = await Promise.all(endpoints.data.map(async (we) => {
        const secret = h("span", { class: "muted" });
        const act = (label, f, cls) => h("button", { class: cls, onclick: async () => { try { await f(); } catch (e) { secret.replaceChildren(failure(e)); } } }, label);
        return h("tr", { testid: "endpoint-row", "data-id": we.id },
          h("td", {}, h("code", {}, we.url), h("br"), h("span", { class: "muted" }, we.id)),
          h("td", { testid: "listen-to" }, we.application ? "Connected accounts" : "Your account"),
          h("td", {}, we.enabled_events.includes("*") ? "All events" : `${we.enabled_events.length} events`),
          h("td", { testid: "status" }, we.status === "enabled" ? h("span", { class: "ok" }, "Enabled") : h("span", { class: "bad" }, "Disabled")),
          h("td", {}, await endpointHealth(we.id).catch(() => "—")),
          h("td", {},
            h("div", { class: "row" },
              act(we.status === "enabled" ? "Disable" : "Enable", async () => { await api("POST", `/v1/webhook_endpoints/${we.id}`, { disabled: we.status === "enabled" ? "true" : "false" }); load(); }),
              act("Reveal secret", async () => { const s = await api("GET", `/switchboard/v1/webhook_endpoints/${we.id}/secret`); secret.replaceChildren(h("span", { class: "secret", testid: "secret" }, s.secret)); }),
              act("Roll secret", async () => { const r = await api("POST", `/switchboard/v1/webhook_endpoints/${we.id}/roll_secret`); secret.replaceChildren(h("span", { class: "secret", testid: "secret" }, r.secret)); }),
              act("Delete", async () => { if (confirm(`Delete ${we.url}?`)) { await api("DELETE", `/v1/webhook_endpoints/${we.id}`); load(); } }, "danger")),
            secret));
      }));
      const destinations = await api("GET", "/v2/core/event_destinations", { limit: 100, include: ["webhook_endpoint.url"] });
      const destinationRows = await Promise.all(destinations.data.map(async (ed) => {
        const note = h("span", { class: "muted" });
        const act = (label, f, cls) => h("button", { class: cls, onclick: async () => { try { await f(); } catch (e) { note.replaceChildren(failure(e)); } } }, label);
        const base = `/v2/core/event_destinations/${ed.id}`;
        const from = ed.events_from.map((f) => (f === "@self" ? "Your account" : "Connected accounts")).join(" + ");
        return h("tr", { testid: "destination-row", "data-id": ed.id },
          h("td", {}, ed.name, h("br"), h("code", {}, ed.webhook_endpoint?.url || ""), h("br"), h("span", { class: "muted" }, ed.id)),
          h("td", {}, from),
          h("td", { testid: "payload" }, ed.event_payload === "thin" ? "Thin" : `Snapshot (${ed.snapshot_api_version || "default version"})`),
          h("td", {}, `${ed.enabled_events.length} events`),
          h("td", { testid: "status" }, ed.status === "enabled" ? h("span", { class: "ok" }, "Enabled") : h("span", { class: "bad" }, "Disabled")),
          h("td", { testid: "health" }, await endpointHealth(ed.id).catch(() => "—")),
          h("td", {},
            h("div", { class: "row" },
              act(ed.status === "enabled" ? "Disable" : "Enable", async () => { await api("POST", `${base}/${ed.status === "enabled" ? "disable" : "enable"}`); load(); }),
              act("Ping", async () => { await api("POST", `${base}/ping`); note.replaceChildren(h("span", { class: "ok", testid: "pinged" }, "Ping sent.")); }),
              act("Delete", async () => { if (confirm(`Delete ${ed.name}?`)) { await api("DELETE", base); load(); } }, "danger")),
            note));
      }));
      const devices = await api("GET", "/switchboard/v1/listeners");
      body.replaceChildren(endpoints.data.length
        ? h("table", {}, h("tr", {}, ["Endpoint", "Listening to", "Events", "Status", "Recent deliveries", ""].map((t) => h("th", {}, t))), rows)
        : h("p", { class: "muted", testid: "no-endpoints" }, "No endpoints yet."),
        h("h2", {}, "Event destinations (API v2)"),
        destinations.data.length
          ? h("table", { testid: "destinations" }, h("tr", {}, ["Destination", "Events from", "Payload", "Events", "Status", "Recent deliveries", ""].map((t) => h("th", {}, t))), destinationRows)
          : h("p", { class: "muted" }, "No event destinations yet (POST /v2/core/event_destinations)."),
        h("h2", {}, "Local listeners (stripe listen)"),
        devices.data.length
          ? h("table", { testid: "listeners" }, h("tr", {}, ["Device", "Events", "Endpoint", "Connected"].map((t) => h("th", {}, t))),
            devices.data.map((d) => h("tr", {}, h("td", {}, d.device_name), h("td", {}, d.event_payload === "thin" ? "Thin" : "Snapshot"), h("td", {}, h("code", {}, d.id)),
              h("td", {}, d.connected ? h("span", { class: "ok" }, "connected") : h("span", { class: "muted" }, "not connected")))))
          : h("p", { class: "muted" }, "No stripe listen session has connected yet."));
    } catch (e) {
      body.replaceChildren(failure(e));
    }
  }
  load();
}

// -- events --------------------------------------------------------------

function eventsView(initialAccount) {
  const type = h("input", { type: "search", placeholder: "type, or prefix like customer.*", testid: "filter-type" });
  const account = h("input", { type: "search", placeholder: "acct_… (connected account)", testid: "filter-account", value: initialAccount });
  const status = h("select", { testid: "filter-status" },
    h("option", { value: "" }, "Any delivery status"),
    h("option", { value: "true" }, "Delivered"),
    h("option", { value: "false" }, "Pending or failed"));
  const since = h("input", { type: "date", title: "Created on or after", testid: "filter-since" });
  // Snapshot events are /v1/events; thin ones (v1.* interop and v2.*) are /v2/core/events.
  const kind = h("select", { testid: "filter-kind" },
    h("option", { value: "v1" }, "Snapshot events (v1)"),
    h("option", { value: "v2" }, "Thin events (v2)"));
  const table = h("tbody", { testid: "events" });
  const more = h("button", { testid: "more" }, "Older events");
  const error = h("div");
  let oldest = null;
  const params = (extra) => ({
    limit: 25, type: type.value.trim(), delivery_success: status.value,
    "created[gte]": since.value ? Math.floor(Date.parse(`${since.value}T00:00:00Z`) / 1000) : undefined, ...extra,
  });
  const v2 = () => kind.value === "v2";
  const v2Params = () => ({
    limit: 25, types: type.value.trim() && !type.value.includes("*") ? [type.value.trim()] : undefined,
    "created[gte]": since.value ? `${since.value}T00:00:00.000Z` : undefined,
  });
  const row = (ev) => {
    const who = ev.account || ev.context;
    const query = new URLSearchParams({ ...(who ? { account: who } : {}), ...(ev.object === "v2.core.event" ? { v2: "1" } : {}) }).toString();
    return h("tr", { class: "link", testid: "event-row", "data-id": ev.id,
      onclick: () => { location.hash = `#/events/${ev.id}${query ? `?${query}` : ""}`; } },
      h("td", {}, h("code", {}, ev.type)),
      h("td", {}, h("code", {}, ev.id)),
      h("td", {}, who || h("span", { class: "muted" }, "your account")),
      h("td", {}, ev.object === "v2.core.event" ? h("span", { class: "muted" }, "see attempts")
        : ev.pending_webhooks ? h("span", { class: "bad" }, `${ev.pending_webhooks} pending`) : h("span", { class: "ok" }, "delivered")),
      h("td", {}, typeof ev.created === "string" ? ev.created.replace("T", " ").replace(".000Z", " UTC") : when(ev.created)));
  };
  let nextPage = null;
  // Newest first; the first page is re-read every second (live updates),
  // older pages follow the cursor (fast however many events there are).
  const refresh = async () => {
    try {
      const page = v2()
        ? await api("GET", "/v2/core/events", v2Params(), account.value.trim() || undefined)
        : await api("GET", "/v1/events", params(), account.value.trim() || undefined);
      const older = oldest ? [...table.children].filter((r) => r.dataset.page === "older") : [];
      table.replaceChildren(...page.data.map(row), ...older);
      if (!oldest) {
        oldest = page.data.length ? page.data[page.data.length - 1].id : null;
        nextPage = page.next_page_url || null;
      }
      more.hidden = v2() ? !nextPage : !page.has_more && !older.length;
      error.replaceChildren();
    } catch (e) {
      error.replaceChildren(failure(e));
    }
  };
  more.addEventListener("click", async () => {
    const last = table.lastElementChild?.dataset.id;
    if (!last) return;
    const page = v2()
      ? (nextPage ? await api("GET", nextPage, {}, account.value.trim() || undefined) : { data: [] })
      : await api("GET", "/v1/events", params({ starting_after: last }), account.value.trim() || undefined);
    for (const ev of page.data) { const r = row(ev); r.dataset.page = "older"; table.append(r); }
    oldest = last;
    if (v2()) nextPage = page.next_page_url || null;
    more.hidden = v2() ? !nextPage : !page.has_more;
  });
  for (const el of [type, account, status, since, kind]) el.addEventListener("change", () => { oldest = null; nextPage = null; status.disabled = v2(); refresh(); });
  app.replaceChildren(shell("Events",
    h("h1", {}, "Events"),
    h("div", { class: "row card" }, kind, type, account, status, h("label", {}, "Since ", since)),
    error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Type", "Event", "Account", "Deliveries", "Created"].map((t) => h("th", {}, t)))), table),
    h("p", {}, more)));
  every(1000, refresh);
}

async function eventDetail(id, account, v2) {
  const attempts = h("tbody", { testid: "attempts" });
  const resendTo = h("select", { testid: "resend-endpoint" });
  const note = h("div");
  let event;
  try {
    event = await api("GET", v2 ? `/v2/core/events/${id}` : `/v1/events/${id}`, {}, account);
  } catch (e) {
    app.replaceChildren(shell("Events", failure(e)));
    return;
  }
  const endpoints = v2 ? { data: [] } : await api("GET", "/v1/webhook_endpoints", { limit: 100 });
  resendTo.replaceChildren(...endpoints.data.map((we) => h("option", { value: we.id }, we.url)));
  const resend = async () => {
    try {
      await api("POST", `/v1/events/${id}/retry`, { webhook_endpoint: resendTo.value }, account);
      note.replaceChildren(h("span", { class: "ok", testid: "resent" }, "Resend queued."));
    } catch (e) {
      note.replaceChildren(failure(e));
    }
  };
  const next = (a) => a.next_action === "retry" ? `retry at ${when(a.next_attempt_at)}` : a.next_action.replace("_", " ");
  app.replaceChildren(shell("Events",
    h("h1", {}, event.type, " ", h("code", { class: "muted" }, event.id)),
    h("p", {}, account ? `On connected account ${account} · ` : "On your account · ",
      typeof event.created === "string" ? event.created : when(event.created)),
    h("h2", {}, "Delivery attempts"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Endpoint", "Attempt", "Result", "Duration", "Response", "Next"].map((t) => h("th", {}, t)))), attempts),
    v2 ? null : h("div", { class: "row card" }, "Resend to", resendTo, h("button", { class: "primary", onclick: resend, testid: "resend" }, "Resend"), note),
    h("h2", {}, "Event data"),
    h("pre", { testid: "event-json" }, JSON.stringify(event, null, 2))));
  every(1000, async () => {
    const list = await api("GET", `/switchboard/v1/events/${id}/attempts`, { limit: 100 }, account).catch(() => null);
    if (!list) return;
    attempts.replaceChildren(...list.data.map((a) => h("tr", { testid: "attempt-row" },
      h("td", {}, h("code", {}, a.webhook_endpoint)),
      h("td", {}, `#${a.attempt}`, a.chaos.length ? ` (chaos: ${a.chaos.join(", ")})` : ""),
      h("td", {}, a.succeeded ? h("span", { class: "ok" }, a.status_code) : h("span", { class: "bad" }, a.status_code || a.error)),
      h("td", {}, `${a.duration_ms} ms`),
      h("td", {}, h("code", {}, (a.response_body || "").slice(0, 200))),
      h("td", {}, next(a)))));
  });
}

// -- connected accounts --------------------------------------------------

function accountsView() {
  const body = h("tbody", { testid: "accounts" });
  const error = h("div");
  app.replaceChildren(shell("Connected accounts",
    h("h1", {}, "Connected accounts"), error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Account", "Type", "Charges", "Payouts", "Due", "Created"].map((t) => h("th", {}, t)))), body)));
  every(2000, async () => {
    try {
      const list = await api("GET", "/v1/accounts", { limit: 100 });
      body.replaceChildren(...list.data.map((a) => h("tr", { class: "link", testid: "account-row", "data-id": a.id, onclick: () => { location.hash = `#/accounts/${a.id}`; } },
        h("td", {}, a.business_profile?.name || a.email || a.id, h("br"), h("code", { class: "muted" }, a.id)),
        h("td", {}, a.type),
        h("td", {}, a.charges_enabled ? h("span", { class: "ok" }, "enabled") : h("span", { class: "bad" }, "disabled")),
        h("td", {}, a.payouts_enabled ? h("span", { class: "ok" }, "enabled") : h("span", { class: "bad" }, "disabled")),
        h("td", {}, (a.requirements?.currently_due || []).length),
        h("td", {}, when(a.created)))));
    } catch (e) {
      error.replaceChildren(failure(e));
    }
  });
}

async function accountDetail(id) {
  let account, persons, balance;
  try {
    [account, persons, balance] = await Promise.all([
      api("GET", `/v1/accounts/${id}`),
      api("GET", `/v1/accounts/${id}/persons`, { limit: 100 }),
      api("GET", "/v1/balance", {}, id),
    ]);
  } catch (e) {
    app.replaceChildren(shell("Connected accounts", failure(e)));
    return;
  }
  const list = (items) => items.length ? h("ul", {}, items.map((i) => h("li", {}, h("code", {}, i)))) : h("p", { class: "muted" }, "none");
  const money = (entries) => entries.map((b) => `${(b.amount / 100).toFixed(2)} ${b.currency.toUpperCase()}`).join(", ") || "0";
  app.replaceChildren(shell("Connected accounts",
    h("h1", { testid: "account-title" }, account.business_profile?.name || account.email || account.id, " ", h("code", { class: "muted" }, account.id)),
    h("p", {}, h("a", { href: `#/events?account=${account.id}`, testid: "account-events" }, "Events on this account")),
    h("div", { class: "card" },
      h("h2", {}, "Requirements"),
      h("p", {}, "Currently due:"), list(account.requirements?.currently_due || []),
      h("p", {}, "Past due:"), list(account.requirements?.past_due || []),
      account.requirements?.disabled_reason ? h("p", { class: "bad" }, `Disabled: ${account.requirements.disabled_reason}`) : null),
    h("div", { class: "card" },
      h("h2", {}, "Capabilities"),
      h("table", {}, Object.entries(account.capabilities || {}).map(([k, v]) => h("tr", {}, h("td", {}, h("code", {}, k)), h("td", { class: v === "active" ? "ok" : "muted" }, v))))),
    h("div", { class: "card", testid: "balance" },
      h("h2", {}, "Balance"),
      h("p", {}, "Available: ", money(balance.available)), h("p", {}, "Pending: ", money(balance.pending))),
    h("div", { class: "card" },
      h("h2", {}, "External accounts"),
      list((account.external_accounts?.data || []).map((e) => `${e.object} ${e.bank_name || e.brand || ""} ••••${e.last4} (${e.currency})`))),
    h("div", { class: "card" },
      h("h2", {}, "Persons"),
      list(persons.data.map((p) => `${p.first_name || ""} ${p.last_name || ""} ${p.id}`.trim())))));
}

// -- request log ---------------------------------------------------------

function logsView() {
  const method = h("select", { testid: "log-method" }, ["", "GET", "POST", "DELETE"].map((m) => h("option", { value: m }, m || "Any method")));
  const status = h("input", { type: "search", placeholder: "status, e.g. 400", size: 12, testid: "log-status" });
  const path = h("input", { type: "search", placeholder: "/v1/customers", testid: "log-path" });
  const body = h("tbody", { testid: "logs" });
  const detail = h("div");
  const error = h("div");
  app.replaceChildren(shell("Request log",
    h("h1", {}, "Request log"),
    h("p", { class: "muted" }, "API requests this node served, newest first; keys, secrets and card numbers are masked."),
    h("div", { class: "row card" }, method, status, path), error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Status", "Method", "Path", "Account", "Idempotency key", "Duration", "Time"].map((t) => h("th", {}, t)))), body),
    detail));
  const refresh = async () => {
    try {
      const list = await api("GET", "/switchboard/v1/request_logs", { limit: 100, method: method.value, status: status.value.trim(), path: path.value.trim() });
      body.replaceChildren(...list.data.map((r) => h("tr", { class: "link", testid: "log-row", onclick: () => detail.replaceChildren(
        h("h2", {}, `${r.method} ${r.url} → ${r.status}`, " ", h("code", { class: "muted" }, r.id)),
        h("p", {}, "Request"), h("pre", { testid: "log-request" }, r.request_body || "(empty)"),
        h("p", {}, "Response"), h("pre", { testid: "log-response" }, r.response_body)) },
        h("td", {}, r.status < 400 ? h("span", { class: "ok" }, r.status) : h("span", { class: "bad" }, r.status)),
        h("td", {}, r.method), h("td", {}, h("code", {}, r.url)), h("td", {}, r.account || ""),
        h("td", {}, r.idempotency_key ? h("code", {}, r.idempotency_key) : ""), h("td", {}, `${r.duration_ms} ms`), h("td", {}, when(r.created)))));
    } catch (e) {
      error.replaceChildren(failure(e));
    }
  };
  for (const el of [method, status, path]) el.addEventListener("input", refresh);
  every(1000, refresh);
}

// -- routing -------------------------------------------------------------

function route() {
  timers.forEach(clearInterval);
  timers = [];
  if (!key()) return app.replaceChildren(signIn());
  const [path, query] = location.hash.slice(1).split("?");
  const account = new URLSearchParams(query || "").get("account") || undefined;
  const parts = path.split("/").filter(Boolean);
  const v2 = new URLSearchParams(query || "").get("v2") === "1";
  if (parts[0] === "events" && parts[1]) return eventDetail(parts[1], account, v2);
  if (parts[0] === "events") return eventsView(account);
  if (parts[0] === "accounts" && parts[1]) return accountDetail(parts[1]);
  if (parts[0] === "accounts") return accountsView();
  if (parts[0] === "logs") return logsView();
  return webhooks();
}

window.addEventListener("hashchange", route);
route();
