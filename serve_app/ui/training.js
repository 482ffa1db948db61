// The training screen: start, stop and resume; live progress from /monitor; the loss and validation-metric
// curves as points arrive; a search's trials as a table and a chart.
import { act, api, duration, facts, keyed, table } from "./api.js";
import { lineChart } from "./charts.js";

const NOT_METRICS = new Set(["epoch", "step", "split", "train_loss", "trial", "time", "elapsed_s"]);
let charts = null;
let runId = null;
let livePoints = []; // {x: step, y: loss} from each progress report seen while this page was open

function ensureCharts() {
  charts = charts || { loss: lineChart("loss-chart", "step"), metrics: lineChart("metric-chart", "step") };
  return charts;
}

function curves(history, live) {
  if (live && typeof live.loss === "number" && !livePoints.some((p) => p.x === live.step)) {
    livePoints.push({ x: live.step, y: live.loss });
    livePoints.sort((a, b) => a.x - b.x);
  }
  const evaluations = history.filter((e) => e.split !== "test");
  const loss = { "training loss (live)": livePoints };
  const perEval = evaluations.filter((e) => typeof e.train_loss === "number").map((e) => ({ x: e.step, y: e.train_loss }));
  if (perEval.length) loss["training loss at each evaluation"] = perEval;
  const metrics = {};
  for (const entry of evaluations) {
    for (const [name, value] of Object.entries(entry)) {
      if (NOT_METRICS.has(name) || typeof value !== "number") continue;
      (metrics[`${entry.split || "validation"} ${name}`] ||= []).push({ x: entry.step, y: value });
    }
  }
  const { loss: lossChart, metrics: metricChart } = ensureCharts();
  lossChart.set(loss);
  metricChart.set(metrics);
  document.getElementById("loss-chart").dataset.points = lossChart.points();
  document.getElementById("metric-chart").dataset.points = metricChart.points();
}

function showHistory(history) {
  const box = document.getElementById("history");
  const names = [...new Set(history.flatMap((e) => Object.keys(e)))]
    .filter((n) => n !== "split" && history.some((e) => e[n] !== null && e[n] !== undefined));
  box.replaceChildren(history.length ? table("Evaluations", ["split", ...names], history.map((e) =>
    [e.split, ...names.map((n) => e[n])])) : "");
}

let trialChart = null;

function showTrials(trials) {
  const box = document.getElementById("trials");
  const figure = document.getElementById("trials-figure");
  figure.hidden = !trials || !trials.length;
  if (figure.hidden) { box.replaceChildren(); return; }
  const params = [...new Set(trials.flatMap((t) => Object.keys(t.config || {})))];
  box.replaceChildren(table("Search trials", ["trial", "state", ...params, "evaluations", "best validation score"],
    trials.map((t) => [t.trial, t.state, ...params.map((p) => (t.config || {})[p]), t.evaluations, t.best])));
  trialChart = trialChart || lineChart("trials-chart", "trial");
  trialChart.set({ "best validation score": trials.filter((t) => typeof t.best === "number").map((t) => ({ x: t.trial, y: t.best })) });
}

export async function showMonitor(status) {
  if (!["queued", "training", "trained", "stopped", "failed"].includes(status.state)) return;
  let monitor;
  try { monitor = await api("GET", keyed("/monitor")); } catch { return; }
  const training = monitor.training || {};
  if (training.id !== runId) { runId = training.id; livePoints = []; }
  const live = training.live || {};
  const progress = status.state === "trained" ? 1 : live.progress || 0;
  document.getElementById("train-progress").value = progress;
  const running = monitor.state === "training";
  facts("live", [["run", training.id], ["state", monitor.state], ["queue position", training.queue_position],
    ["progress", `${Math.round(progress * 100)} %`], ["epoch", live.epoch], ["step", live.step && `${live.step} of ${live.total_steps}`],
    ["loss", live.loss], ["learning rate", running ? live.learning_rate : ""],
    ["samples/s", running ? live.samples_per_s : ""], ["elapsed", duration(live.elapsed_s)],
    ["ETA", running ? duration(live.eta_s) : ""], ["error", monitor.error && monitor.error.message]]);
  curves(monitor.history || [], live);
  showHistory(monitor.history || []);
  showTrials(training.trials);
  document.getElementById("train-resume").disabled = !training.resumable;
  document.dispatchEvent(new CustomEvent("monitor", { detail: monitor }));
}

export function setupTraining(poll) {
  const run = (query) => act("training-error", async () => {
    await api("POST", keyed("/training/start", query));
    poll();
  });
  document.getElementById("train-start").addEventListener("click", () => run(""));
  document.getElementById("train-resume").addEventListener("click", () => run("?resume=true"));
  document.getElementById("train-stop").addEventListener("click", () => act("training-error", async () => {
    await api("POST", keyed("/training/stop"));
    poll();
  }));
  document.addEventListener("screen", (e) => { if (e.detail === "training") ensureCharts(); });
}
