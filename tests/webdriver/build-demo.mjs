// Drives the installed workbench through tauri-driver (W3C WebDriver over
// HTTP, no client library): builds the `layers` demo, checks that the
// build graph's nodes appear with their final states, and saves a
// screenshot. Usage: node build-demo.mjs APP_BINARY SCREENSHOT_PATH
import { writeFileSync } from "node:fs";
import assert from "node:assert/strict";

const DRIVER = process.env.TAURI_DRIVER_URL ?? "http://127.0.0.1:4444";
// The demo starts two runc containers, which can take minutes on a
// loaded machine.
const BUILD_TIMEOUT_MS = 180_000;

const [application, screenshotPath] = process.argv.slice(2);
if (!application || !screenshotPath) {
  console.error("Usage: node build-demo.mjs APP_BINARY SCREENSHOT_PATH");
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
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}`);
}

const session = await call("POST", "/session", {
  capabilities: { alwaysMatch: { "tauri:options": { application } } },
});
const base = `/session/${session.sessionId}`;
const script = (source) => call("POST", `${base}/execute/sync`, { script: source, args: [] });

try {
  const button = await waitFor("the `Build layers` button", 30_000, async () => {
    const found = await call("POST", `${base}/elements`, {
      using: "css selector",
      value: "#build-layers",
    });
    return found[0];
  });
  await call("POST", `${base}/element/${Object.values(button)[0]}/click`, {});

  const status = await waitFor("the build to finish", BUILD_TIMEOUT_MS, async () => {
    const text = await script("return document.getElementById('build-status').textContent");
    return text === "running" ? null : text;
  });
  const error = await script("return document.getElementById('error').textContent");
  assert.equal(status, "succeeded", `build status: ${status} ${error}`);

  const nodes = await script(
    "return [...document.querySelectorAll('li.node')].map(n => [n.textContent, n.dataset.state])",
  );
  console.log(nodes.map(([name, state]) => `${state.padEnd(8)} ${name}`).join("\n"));
  const runs = nodes.filter(([name]) => name.includes("RUN"));
  assert.equal(runs.length, 2, "two RUN nodes");
  const copies = nodes.filter(([name]) => name.includes("COPY"));
  assert.equal(copies.length, 1, "one COPY node");
  for (const [name, state] of nodes) {
    assert.ok(["done", "cached"].includes(state), `${name} ended ${state}`);
  }

  const png = await call("GET", `${base}/screenshot`);
  writeFileSync(screenshotPath, Buffer.from(png, "base64"));
  console.log(`Saved ${screenshotPath}`);
} finally {
  await call("DELETE", base).catch(() => {});
}
