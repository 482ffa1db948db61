// The results screen: the test metrics (GET /monitor), and from the results archive (GET /download_results,
// read in the page) the confusion matrix, the per-label scores and the worst-predicted test examples; downloads.
import { act, api, el, fmt, keyed, table } from "./api.js";
import { member, parseDelimited, untarGz } from "./files.js";

const WORST = 10;

function showMetrics(metrics) {
  const box = document.getElementById("test-metrics");
  if (!metrics) { box.replaceChildren(); return; }
  const rows = Object.entries(metrics).filter(([k, v]) => typeof v === "number" && !["epoch", "step"].includes(k));
  box.replaceChildren(table(`Test metrics (${metrics.split || "test"} split)`, ["metric", "value"], rows));
  if (metrics.selected) {
    const s = metrics.selected;
    box.append(el("p", { text: `Model kept: best ${s.metric} on ${s.split} (${fmt(s.value)}) at step ${s.step}.` }));
  }
}

function showConfusion(csv) {
  const box = document.getElementById("confusion");
  if (!csv) { box.replaceChildren(); return; }
  const [header, ...rows] = parseDelimited(csv.trim(), ",");
  const max = Math.max(1, ...rows.flatMap((r) => r.slice(1).map(Number)));
  const t = el("table", { class: "confusion" }, el("caption", { text: `Confusion matrix on the test file: rows are the true label, columns the prediction` }));
  t.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: header[0] }),
    ...header.slice(1).map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const [label, ...counts] of rows) {
    body.append(el("tr", {}, el("th", { scope: "row", text: label }), ...counts.map((c, j) => {
      const share = Number(c) / max;
      const cell = el("td", { text: c, style: `--share: ${share.toFixed(3)}` });
      cell.classList.add(header[j + 1] === label ? "hit" : "miss");
      if (share > 0.55) cell.classList.add("dark");
      return cell;
    })));
  }
  t.append(body);
  box.replaceChildren(el("div", { class: "scroll" }, t));
}

function showPerLabel(json) {
  const box = document.getElementById("per-label");
  if (!json) { box.replaceChildren(); return; }
  const report = JSON.parse(json);
  const rows = Object.entries(report).filter(([, v]) => v && typeof v === "object")
    .map(([label, v]) => [label, v.precision, v.recall, v["f1-score"], v.support]);
  box.replaceChildren(table("Scores per label on the test file", ["label", "precision", "recall", "f1", "support"], rows));
}

function showWorst(csv) {
  const box = document.getElementById("worst");
  if (!csv) { box.replaceChildren(); return; }
  const [header, ...rows] = parseDelimited(csv.trim(), ",");
  const at = (name) => header.indexOf(name);
  const texts = header.slice(0, at("label") >= 0 ? at("label") : at("score"));
  let scored;
  if (at("score") >= 0) { // regression: the largest errors
    scored = rows.map((r) => ({ r, bad: Math.abs(Number(r[at("score")]) - Number(r[at("prediction")])) }));
  } else if (!rows.some((r) => r[at("label")].includes("|"))) { // single-label: the lowest probability of the truth
    scored = rows.map((r) => ({ r, bad: 1 - Number(r[at(`prob_${r[at("label")]}`)] ?? 0) }));
  } else return;
  scored.sort((a, b) => b.bad - a.bad);
  const cols = [...texts, at("score") >= 0 ? "score" : "label", "prediction"];
  box.replaceChildren(table(`The ${WORST} worst-predicted test examples`, [...cols, at("score") >= 0 ? "error" : "p(wrong)"],
    scored.slice(0, WORST).map(({ r, bad }) => [...cols.map((c) => r[at(c)]), bad])));
}

async function loadResults() {
  const monitor = await api("GET", keyed("/monitor"));
  showMetrics(monitor.metrics);
  const files = await untarGz(await api("GET", keyed("/download_results"), { blob: true }));
  showConfusion(member(files, "confusion_matrix.csv"));
  showPerLabel(member(files, "per_class_report.json"));
  showWorst(member(files, "predictions.csv"));
}

async function download(format) {
  const path = format === "results" ? keyed("/download_results") : keyed("/download_model", `?format=${format}`);
  const response = await api("GET", path, { blob: true });
  const name = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name ? name[1] : `${format}.tar.gz` });
  document.body.append(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
}

export function setupResults() {
  document.getElementById("load-results").addEventListener("click", () => act("results-error", loadResults));
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => act("download-error", async () => {
      button.disabled = true;
      try { await download(button.dataset.download); } finally { button.disabled = false; }
    }));
  }
  document.addEventListener("screen", (e) => {
    const state = document.getElementById("status-line").dataset.state;
    if (e.detail === "results" && ["trained", "stopped"].includes(state)) act("results-error", loadResults);
  });
}
