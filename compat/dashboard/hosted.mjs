// The hosted pages in a real browser (Debian's Chromium, driven by
// playwright-core): onboard an Express account through its Account Link's
// page (one submit of the pre-filled form), see the used link go to
// refresh_url, then complete one 3-D Secure authentication and fail another.
// Usage: node hosted.mjs BASE_URL SECRET_KEY SCREENSHOT_DIR
// Prints a JSON summary; the Rust test checks the webhooks it caused.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, key, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Failed loads are judged by their response below (Chromium's console line
// names no URL); anything else on the console is a problem.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
});
// The one expected failure: the form with a typo answers 400. (Chromium asks
// for /favicon.ico, which does not exist.)
page.on("response", (r) => {
  const url = new URL(r.url());
  const typo = r.status() === 400 && url.pathname === "/switchboard/pages/onboarding" && r.request().method() === "POST";
  if (r.status() >= 400 && !typo && url.pathname !== "/favicon.ico") problems.push(`${r.status()} for ${r.request().method()} ${url.pathname}`);
});
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const api = async (method, path, body, account) => {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/x-www-form-urlencoded" };
  if (account) headers["Stripe-Account"] = account;
  const r = await fetch(base + path, { method, headers, body });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const expect = (what, ok) => {
  if (!ok) throw new Error(what);
};
// Where the platform's pages would be: the dashboard stands in for them.
const returnUrl = `${base}/dashboard?onboarding=done`;
const refreshUrl = `${base}/dashboard?onboarding=refresh`;

try {
  const account = (await api("POST", "/v1/accounts",
    "type=express&country=US&capabilities[card_payments][requested]=true&capabilities[transfers][requested]=true")).id;
  const link = await api("POST", "/v1/account_links",
    `account=${account}&type=account_onboarding&return_url=${encodeURIComponent(returnUrl)}&refresh_url=${encodeURIComponent(refreshUrl)}`);
  await page.goto(link.url);
  await page.waitForSelector("[data-testid=submit]");
  expect("the page names the account", (await page.textContent("[data-testid=account]")) === account);
  expect("the form is pre-filled", (await page.inputValue("[data-testid=first_name]")) === "Jenny");
  await shot("onboarding-1-form");
  // A typo first: the page shows the error and keeps what was typed.
  await page.fill("[data-testid=routing_number]", "12345");
  await page.click("[data-testid=submit]");
  await page.waitForSelector("[data-testid=error] >> text=Routing number must have 9 digits");
  expect("the typed value is kept", (await page.inputValue("[data-testid=routing_number]")) === "12345");
  await shot("onboarding-2-error");
  await page.fill("[data-testid=routing_number]", "110000000");
  await page.fill("[data-testid=first_name]", "Ada");
  await page.click("[data-testid=submit]");
  await page.waitForURL(returnUrl);
  await shot("onboarding-3-returned");
  const onboarded = await api("GET", `/v1/accounts/${account}`);
  expect(`charges enabled: ${JSON.stringify(onboarded.requirements)}`, onboarded.charges_enabled === true);
  // The link was used: opening it again goes to refresh_url.
  await page.goto(link.url);
  await page.waitForURL(refreshUrl);

  // 3-D Secure: complete one, fail another.
  const pi = await api("POST", "/v1/payment_intents",
    `amount=2000&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true&return_url=${encodeURIComponent(returnUrl)}`);
  expect(`requires_action: ${pi.status}`, pi.status === "requires_action");
  await page.goto(pi.next_action.redirect_to_url.url);
  await page.waitForSelector("text=Complete authentication");
  await shot("3ds-1-challenge");
  await page.click("text=Complete authentication");
  await page.waitForURL((u) => u.searchParams.get("redirect_status") === "succeeded");
  expect("back with the PaymentIntent", new URL(page.url()).searchParams.get("payment_intent") === pi.id);
  const succeeded = await api("GET", `/v1/payment_intents/${pi.id}`);
  expect(`succeeded: ${succeeded.status}`, succeeded.status === "succeeded");

  const pi2 = await api("POST", "/v1/payment_intents",
    `amount=3000&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true&return_url=${encodeURIComponent(returnUrl)}`);
  await page.goto(pi2.next_action.redirect_to_url.url);
  await page.click("text=Fail authentication");
  await page.waitForURL((u) => u.searchParams.get("redirect_status") === "failed");
  await shot("3ds-2-failed");
  const failed = await api("GET", `/v1/payment_intents/${pi2.id}`);
  expect(`failed: ${failed.status}`, failed.status === "requires_payment_method");
  // The challenge page is gone once answered.
  await page.goto(pi.next_action.redirect_to_url.url);
  await page.waitForSelector("text=no longer needs authentication");

  expect(problems.join("\n"), problems.length === 0);
  console.log(JSON.stringify({ account, succeeded: pi.id, failed: pi2.id }));
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(e.stack || String(e));
  console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
