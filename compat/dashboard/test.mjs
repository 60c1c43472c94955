// The dashboard in a real browser (Debian's Chromium, driven by
// playwright-core): sign in, create a Connect endpoint through the form,
// cause an event on a connected account, watch it and its delivery attempt
// appear without reloading, press Resend, watch the second attempt; an API
// v2 thin destination listed and pinged, an Accounts v2 event among the thin events.
// Usage: node test.mjs BASE_URL SECRET_KEY HOOK_URL SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, key, hook, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// The wrong key's 401 is expected; any other failed load or console error is not.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().includes("status of 401")) problems.push(`console: ${m.text()}`);
});
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const api = async (method, path, body, account) => {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/x-www-form-urlencoded" };
  if (account) headers["Stripe-Account"] = account;
  if (path.startsWith("/v2/")) headers["Content-Type"] = "application/json";
  const r = await fetch(base + path, { method, headers, body });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

try {
  await page.goto(`${base}/dashboard`);
  // A wrong key is refused with Stripe's message.
  await page.fill("[data-testid=key]", "sk_test_wrong");
  await page.click("[data-testid=sign-in]");
  await page.waitForSelector("[data-testid=error] >> text=Invalid API Key");
  await page.fill("[data-testid=key]", key);
  await page.click("[data-testid=sign-in]");
  const mode = await page.textContent("[data-testid=mode]");
  if (mode !== "TEST MODE") throw new Error(`mode shows ${mode}`);
  await page.waitForSelector("[data-testid=no-endpoints]");
  await shot("1-webhooks-empty");

  await page.click("[data-testid=new-endpoint]");
  await page.fill("[data-testid=endpoint-url]", hook);
  await page.check("[data-testid=listen-connect]");
  await shot("2-new-endpoint");
  await page.click("[data-testid=create-endpoint]");
  const row = page.locator("[data-testid=endpoint-row]", { hasText: hook });
  await row.waitFor();
  const listen = await row.locator("[data-testid=listen-to]").textContent();
  if (listen !== "Connected accounts") throw new Error(`listening to ${listen}`);
  await row.locator("text=Reveal secret").click();
  const secret = await row.locator("[data-testid=secret]").textContent();
  if (!secret.startsWith("whsec_")) throw new Error(`secret ${secret}`);
  await shot("3-endpoint-created");

  // The events page, watching a connected account; the event is caused after it is open.
  const account = (await api("POST", "/v1/accounts", "type=express&country=US&email=shop%40example.com")).id;
  await page.click("text=Events");
  await page.fill("[data-testid=filter-account]", account);
  await page.press("[data-testid=filter-account]", "Enter");
  await page.waitForSelector("[data-testid=events]", { state: "attached" });
  const customer = await api("POST", "/v1/customers", "name=Seen%20live", account);
  const eventRow = page.locator("[data-testid=event-row]", { hasText: "customer.created" });
  await eventRow.waitFor({ timeout: 10000 });
  await shot("4-event-arrived-live");
  // A date filter after today hides it; clearing it brings it back.
  const tomorrow = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
  await page.fill("[data-testid=filter-since]", tomorrow);
  await page.waitForFunction(() => !document.querySelector("[data-testid=event-row]"));
  await page.fill("[data-testid=filter-since]", "");
  await eventRow.waitFor();

  await eventRow.click();
  await page.waitForSelector(`[data-testid=event-json] >> text=${customer.id}`);
  const attempts = page.locator("[data-testid=attempt-row]");
  await attempts.first().waitFor({ timeout: 10000 });
  await page.waitForSelector("[data-testid=attempt-row] >> text=200");
  await page.click("[data-testid=resend]");
  await page.waitForSelector("[data-testid=resent]");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=attempt-row]").length >= 2, null, { timeout: 10000 });
  await shot("5-resent");

  // The connected account: listed, and its details with the events link.
  await page.click("text=Connected accounts");
  await page.locator("[data-testid=account-row]", { hasText: account }).click();
  await page.waitForSelector("[data-testid=account-title]");
  await page.waitForSelector("[data-testid=balance]");
  await shot("6-connected-account");
  await page.click("[data-testid=account-events]");
  await page.locator("[data-testid=event-row]", { hasText: "customer.created" }).first().waitFor();

  // The request log: the webhook endpoint's creation, its secret masked.
  await page.click("text=Request log");
  await page.selectOption("[data-testid=log-method]", "POST");
  await page.fill("[data-testid=log-path]", "/v1/webhook_endpoints");
  await page.locator("[data-testid=log-row]").filter({ hasText: "/v1/webhook_endpoints" }).filter({ hasText: "POST" }).first().click();
  const logged = await page.textContent("[data-testid=log-response]");
  if (logged.includes(secret) || !logged.includes("whsec_…")) throw new Error(`the secret is not masked: ${logged.slice(0, 400)}`);
  await shot("7-request-log");

  // API v2: a thin event destination listed with its payload kind, pinged
  // from the page; an Accounts v2 event listed among the thin events, its
  // attempt shown.
  const ed = await api("POST", "/v2/core/event_destinations", JSON.stringify({
    name: "thin-hooks", type: "webhook_endpoint", event_payload: "thin", events_from: ["@self"],
    enabled_events: ["v2.core.account.created"], webhook_endpoint: { url: hook },
  }));
  await page.click("text=Webhooks");
  const destRow = page.locator("[data-testid=destination-row]", { hasText: "thin-hooks" });
  await destRow.waitFor();
  const payload = await destRow.locator("[data-testid=payload]").textContent();
  if (payload !== "Thin") throw new Error(`payload shows ${payload}`);
  await destRow.locator("text=Ping").click();
  await destRow.locator("[data-testid=pinged]").waitFor();
  const v2acct = await api("POST", "/v2/core/accounts", JSON.stringify({ display_name: "Thin Shop" }));
  await page.click("text=Events");
  await page.selectOption("[data-testid=filter-kind]", "v2");
  const v2Row = page.locator("[data-testid=event-row]", { hasText: "v2.core.account.created" });
  await v2Row.waitFor({ timeout: 10000 });
  await page.locator("[data-testid=event-row]", { hasText: "v2.core.event_destination.ping" }).waitFor();
  await shot("8-thin-events");
  await v2Row.click();
  await page.waitForSelector(`[data-testid=event-json] >> text=${v2acct.id}`);
  await page.waitForSelector("[data-testid=attempt-row] >> text=200", { timeout: 10000 });
  if (await page.locator("[data-testid=resend]").count()) throw new Error("a v2 event offers a v1 resend");
  await shot("9-thin-event");
  if (!ed.id.startsWith("ed_")) throw new Error(`destination ${ed.id}`);
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(JSON.stringify({ ok: true, account, customer: customer.id, secret }));
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(e.stack || String(e));
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
