// The model screen: deploy (torch or an ONNX runtime), undeploy, the deployment's state, and a playground that
// calls /predict with one input per line.
import { act, api, facts, keyed, table } from "./api.js";

let task = null;

export async function showDeployment() {
  let body;
  try { body = await api("GET", keyed("/deploy")); } catch { return; }
  const d = body.deployment || {};
  const model = d.model || {};
  task = model.task || task;
  facts("deployment", [["deployment", d.state], ["message", d.message], ["runtime", model.runtime],
    ["replicas", d.replicas && Object.entries(d.replicas).map(([k, v]) => `${v} ${k}`).join(", ")],
    ["task", model.task], ["labels", model.labels && model.labels.join(", ")], ["input", model.input]]);
  document.getElementById("deployment").dataset.state = d.state || "none";
  if (d.state === "deploying") setTimeout(showDeployment, 1000);
}

// One input per line: a text; for a pair model "first text<TAB>second text"; for token classification, words.
function inputs(lines) {
  if (task === "token_classification") return { tokens: lines.map((l) => l.split(/\s+/)) };
  if (lines.every((l) => l.includes("\t"))) return { pairs: lines.map((l) => l.split("\t").slice(0, 2)) };
  return { texts: lines };
}

function showPredictions(lines, answer) {
  const rows = answer.predictions.map((p, i) => {
    if (p.label !== undefined) {
      const top = Object.entries(p.probabilities || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
      return [lines[i], p.label, top.map(([l, v]) => `${l} ${(v * 100).toFixed(1)} %`).join(", ")];
    }
    if (p.labels !== undefined) return [lines[i], p.labels.join(", "), JSON.stringify(p.probabilities)];
    if (p.score !== undefined) return [lines[i], p.score, ""];
    return [lines[i], (p.tags || []).join(" "), ""];
  });
  document.getElementById("predictions").replaceChildren(
    table(`Predictions (${answer.task})`, ["input", "prediction", "probabilities"], rows));
}

export function setupModel() {
  document.getElementById("deploy-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act("deploy-error", async () => {
      await api("POST", keyed("/deploy"), { json: { runtime: document.getElementById("runtime").value } });
      await showDeployment();
    });
  });
  document.getElementById("undeploy").addEventListener("click", () => act("deploy-error", async () => {
    await api("DELETE", keyed("/deploy"));
    await showDeployment();
  }));
  document.getElementById("predict-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const lines = document.getElementById("predict-input").value.split("\n").map((l) => l.trim()).filter(Boolean);
    act("predict-error", async () => showPredictions(lines, await api("POST", keyed("/predict"), { json: inputs(lines) })));
  });
  document.addEventListener("screen", (e) => { if (e.detail === "model") showDeployment(); });
}
