// Drives the workbench commands through Tauri's global API
// (`app.withGlobalTauri` in tauri.conf.json).
const { invoke, Channel } = window.__TAURI__.core;

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
  const events = new Channel();
  events.onmessage = onFrame;
  try {
    const started = await invoke("start_build", { request: { project: demo.path }, events });
    document.getElementById("build-id").textContent = started.build_id;
  } catch (error) {
    document.getElementById("build-status").textContent = "rejected";
    showError(error);
  }
}

async function listDemos() {
  try {
    for (const demo of await invoke("demos")) {
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

listDemos();
