// Drives the workbench API through Tauri's global API
// (`app.withGlobalTauri` in tauri.conf.json) and the app's two commands,
// `api_request` and `api_subscribe`.
const { invoke, Channel } = window.__TAURI__.core;

const request = (method, path, body = null) => invoke("api_request", { method, path, body });

const nodes = new Map();

function showError(error) {
  document.getElementById("error").textContent = `${error.code}: ${error.message}`;
}

function renderNode(node) {
  let item = nodes.get(node.id);
  if (!item) {
    item = document.createElement("li");
    item.className = "node";
    item.dataset.id = node.id;
    document.getElementById("nodes").appendChild(item);
    nodes.set(node.id, item);
  }
  item.dataset.state = node.state;
  item.textContent = `${node.name} [${node.state}]`;
}

function onFrame(frame) {
  for (const message of frame) {
    if (message.type === "node") {
      renderNode(message.node);
    } else if (message.type === "event" && message.event.type === "build_finished") {
      const status = message.event.success ? "succeeded" : "failed";
      document.getElementById("build-status").textContent = status;
      if (message.event.error) {
        document.getElementById("error").textContent = message.event.error;
      }
    }
  }
}

async function build(demo) {
  nodes.clear();
  document.getElementById("nodes").replaceChildren();
  document.getElementById("error").textContent = "";
  document.getElementById("build-status").textContent = "running";
  try {
    const started = await request("POST", "/api/builds", { project: demo.path });
    document.getElementById("build-id").textContent = started.build_id;
  } catch (error) {
    document.getElementById("build-status").textContent = "rejected";
    showError(error);
  }
}

async function listDemos() {
  try {
    for (const demo of await request("GET", "/api/demos")) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.id = `build-${demo.name}`;
      button.textContent = `Build ${demo.name}`;
      button.onclick = () => build(demo);
      item.append(button, ` ${demo.summary}`);
      document.getElementById("demos").appendChild(item);
    }
  } catch (error) {
    showError(error);
  }
}

const events = new Channel();
events.onmessage = onFrame;
invoke("api_subscribe", { channel: events }).catch(showError);
listDemos();
