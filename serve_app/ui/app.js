// The console: navigation, the session (start, resume, token) and the one poll loop that keeps every screen current.
import { act, api, facts, store } from "./api.js";
import { setupConfig } from "./config.js";
import { setupData, showPreprocess } from "./data.js";
import { setupModel, showDeployment } from "./model.js";
import { setupResults } from "./results.js";
import { setupRuns } from "./runs.js";
import { setupTraining, showMonitor } from "./training.js";

const BUSY = new Set(["preprocessing", "queued", "training"]);
let lastState = null;

function showScreen(name) {
  for (const button of document.querySelectorAll("nav button")) {
    if (button.dataset.screen === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `screen-${name}`;
  document.dispatchEvent(new CustomEvent("screen", { detail: name }));
}

function connected(key) {
  store.key = key;
  document.getElementById("key-box").hidden = !key;
  document.getElementById("key-shown").value = key;
  lastState = null;
  poll();
}

function showStatus(status) {
  const line = document.getElementById("status-line");
  line.textContent = `State: ${status.state}. ${status.message || ""}`;
  line.dataset.state = status.state;
  facts("session-status", [["session id", status.session_id], ["state", status.state],
    ["model ready", status.model_ready ? "yes" : "no"], ["message", status.message],
    ["last error", status.error && `${status.error.during}: ${status.error.message}`]]);
}

async function poll() {
  if (!store.key) return;
  let status;
  try { status = await api("GET", "/status"); } catch (error) {
    document.getElementById("status-line").textContent = `Status: ${error.status || ""} ${error.message}`;
    return;
  }
  showStatus(status);
  showPreprocess(status);
  // What the state allows (the API would refuse the rest with 409, naming the call to make first)
  document.getElementById("train-start").disabled = BUSY.has(status.state) || ["idle", "setup"].includes(status.state);
  document.getElementById("train-stop").disabled = !["queued", "training"].includes(status.state);
  document.getElementById("preprocess").disabled = status.state !== "setup";
  const changed = status.state !== lastState;
  if (BUSY.has(status.state) || changed) await showMonitor(status);
  if (changed) showDeployment();
  lastState = status.state;
}

function setupSession() {
  document.getElementById("token").value = store.token;
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    store.token = document.getElementById("token").value.trim();
    act("token-error", async () => { await api("GET", "/status", { key: "" }); poll(); });
  });
  document.getElementById("start-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const force = document.getElementById("force-restart").checked ? "?force_restart=1" : "";
    act("start-error", async () => connected((await api("GET", `/start_session${force}`)).key));
  });
  document.getElementById("resume-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = document.getElementById("resume-key").value.trim();
    act("resume-error", async () => {
      await api("GET", "/status", { key });
      document.getElementById("resume-key").value = "";
      connected(key);
    });
  });
  document.getElementById("forget").addEventListener("click", () => {
    connected("");
    document.getElementById("status-line").textContent = "Not connected: start or resume a session.";
  });
}

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showScreen(b.dataset.screen)));
setupSession();
setupData(poll);
setupConfig();
setupTraining(poll);
setupResults();
setupModel();
setupRuns();
if (store.key) connected(store.key);
// Every second; twice a second while something runs, so the curves get each progress report.
(function loop() { poll().finally(() => setTimeout(loop, BUSY.has(lastState) ? 500 : 1000)); })();
