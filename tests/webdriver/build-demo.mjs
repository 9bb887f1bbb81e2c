// Drives the installed workbench through tauri-driver (W3C WebDriver over
// HTTP, no client library): opens the `layers` demo in the web UI, builds
// it, checks that the graph's RUN and COPY nodes end `done`, rebuilds and
// checks that they end `cached`, and saves a screenshot of each build.
// Usage: node build-demo.mjs APP_BINARY ARTIFACTS_DIR
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const DRIVER = process.env.TAURI_DRIVER_URL ?? "http://127.0.0.1:4444";
// The first build starts two runc containers, which can take minutes on a
// loaded machine.
const BUILD_TIMEOUT_MS = 180_000;

const [application, artifacts] = process.argv.slice(2);
if (!application || !artifacts) {
  console.error("Usage: node build-demo.mjs APP_BINARY ARTIFACTS_DIR");
  process.exit(2);
}

async function call(method, path, body) {
  const response = await fetch(`${DRIVER}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) {
    throw new Error(`WebDriver ${method} ${path} failed: ${JSON.stringify(json.value)}`);
  }
  return json.value;
}

async function waitFor(description, timeoutMs, probe) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}`);
}

const session = await call("POST", "/session", {
  capabilities: { alwaysMatch: { "tauri:options": { application } } },
});
const base = `/session/${session.sessionId}`;
const script = (source) => call("POST", `${base}/execute/sync`, { script: source, args: [] });

async function click(selector, timeoutMs = 30_000) {
  const element = await waitFor(`\`${selector}\``, timeoutMs, async () => {
    const found = await call("POST", `${base}/elements`, { using: "css selector", value: selector });
    return found[0];
  });
  await call("POST", `${base}/element/${Object.values(element)[0]}/click`, {});
}

/** Returns `[name, state]` for every graph node the page draws. */
function nodes() {
  return script(
    "return [...document.querySelectorAll('[data-node-id]')].map(n => [n.textContent, n.dataset.state])",
  );
}

/** Clicks Build and waits until build `previous` is replaced by a finished one. */
async function build(previous) {
  await click('[data-testid="build"]');
  return waitFor("the build to finish", BUILD_TIMEOUT_MS, () =>
    script(`
      const store = window.__strata.store;
      const done = store.buildId && store.buildId !== ${JSON.stringify(previous)} &&
        !store.running && store.finished !== null;
      return done ? { id: store.buildId, finished: store.finished, error: store.error ?? null } : null;
    `),
  );
}

async function checkSteps(expected) {
  const drawn = await nodes();
  console.log(drawn.map(([name, state]) => `${state.padEnd(8)} ${name}`).join("\n"));
  const runs = drawn.filter(([name]) => name.includes("RUN"));
  assert.equal(runs.length, 2, `two RUN nodes in ${JSON.stringify(drawn)}`);
  const copies = drawn.filter(([name]) => name.includes("COPY"));
  assert.equal(copies.length, 1, `one COPY node in ${JSON.stringify(drawn)}`);
  for (const [name, state] of [...runs, ...copies]) {
    assert.equal(state, expected, `${name} ended ${state}`);
  }
  for (const [name, state] of drawn) {
    assert.ok(["done", "cached"].includes(state), `${name} ended ${state}`);
  }
}

async function screenshot(name) {
  const png = await call("GET", `${base}/screenshot`);
  const path = join(artifacts, name);
  writeFileSync(path, Buffer.from(png, "base64"));
  console.log(`Saved ${path}`);
}

try {
  // The status bar fills in once `api_request` reached the engine.
  await waitFor("the status bar to show the worker", 30_000, async () => {
    const text = await script("return document.querySelector('[data-testid=\"status-bar\"]')?.textContent ?? ''");
    return text.includes("runc on overlayfs");
  });
  await click('[data-testid="demo-layers"]');

  const first = await build(null);
  assert.equal(first.finished, true, `first build failed: ${first.error}`);
  await checkSteps("done");
  await screenshot("workbench-build.png");
  console.log("ok first build done");

  await click('[data-testid="tab-project"]');
  const second = await build(first.id);
  assert.equal(second.finished, true, `rebuild failed: ${second.error}`);
  await checkSteps("cached");
  await screenshot("workbench-rebuild.png");
  console.log("ok rebuild cached");
} finally {
  await call("DELETE", base).catch(() => {});
}
