// The data screen: a preview of each chosen file's first rows, the upload, the dataset summary, preprocessing.
import { act, api, el, keyed, showError, table } from "./api.js";
import { previewRows, textLengths } from "./files.js";

const FILES = [["train-file", "train_file", "train"], ["test-file", "test_file", "test"],
  ["validation-file", "validation_file", "validation"]];
const PREVIEW_ROWS = 5;

const chosen = (id) => document.getElementById(id).files[0];

async function preview() {
  const box = document.getElementById("preview");
  box.replaceChildren();
  for (const [id, field] of FILES) {
    const file = chosen(id);
    if (!file) continue;
    const { header, rows } = await previewRows(file, PREVIEW_ROWS);
    const shown = table(`${field}: ${file.name}, first ${rows.length} rows (line 1 is the header)`, header, rows);
    shown.dataset.field = field;
    box.append(shown);
  }
}

// A dataset error names its file, line and column ("train_file: line 5, column 2 (label): ..."): show it by that
// file's input, and mark the cell in the preview when the line is one of the rows shown.
function placeError(error) {
  const where = /^(\w+_file): line (\d+)(?:, column (\d+))?/.exec(error.message || "");
  if (!where) return false;
  showError(`${where[1]}-error`, error);
  const preview = document.querySelector(`#preview [data-field="${where[1]}"] tbody`);
  const row = preview && preview.rows[Number(where[2]) - 2];
  const cell = row && (where[3] ? row.cells[Number(where[3]) - 1] : row);
  if (cell) { cell.classList.add("bad"); cell.setAttribute("title", error.message); }
  return true;
}

export async function showSummary(dataset) {
  const box = document.getElementById("dataset-summary");
  box.replaceChildren();
  if (!dataset || !dataset.train) return;
  const splits = FILES.filter(([, , s]) => dataset[s]);
  const labels = dataset.labels || [];
  box.append(el("h3", { text: "Dataset summary" }), el("p", { text: [`task: ${dataset.task_type}`,
    `text columns: ${dataset.train.text_columns.join(", ")}`, `target: ${dataset.target}`,
    labels.length ? `${labels.length} labels` : ""].filter(Boolean).join("; ") }));
  const rows = [];
  for (const [id, , s] of splits) {
    const lengths = await textLengths(chosen(id), dataset.train.text_columns);
    rows.push([s, dataset[s].filename, dataset[s].format, dataset[s].rows, lengths && Math.round(lengths.mean),
      lengths && lengths.median, lengths && lengths.max]);
  }
  box.append(table("Rows and text lengths (characters) per split", ["split", "file", "format", "rows",
    "mean length", "median length", "max length"], rows));
  if (labels.length) {
    box.append(table("Label counts", ["label", ...splits.map(([, , s]) => s)],
      labels.map((l) => [l, ...splits.map(([, , s]) => (dataset[s].label_counts || {})[l] ?? 0)])));
  }
}

export function showPreprocess(status) {
  const p = status.preprocess || {};
  const progress = document.getElementById("preprocess-progress");
  const done = !["idle", "setup", "preprocessing"].includes(status.state);
  progress.value = status.state === "preprocessing" ? (p.progress || 0) : done ? 1 : 0;
  document.getElementById("preprocess-state").textContent = status.state === "preprocessing"
    ? `running${p.rows_per_s ? `, ${Math.round(p.rows_per_s)} rows/s` : ""}` : done ? "done" : "";
  const failed = status.error && status.error.during === "preprocess";
  document.getElementById("preprocess-error").textContent = failed ? status.error.message : "";
}

export function setupData(poll) {
  for (const [id] of FILES) document.getElementById(id).addEventListener("change", () => preview());
  document.getElementById("upload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    for (const [, field] of FILES) showError(`${field}-error`, null);
    act("upload-error", async () => {
      const form = new FormData();
      for (const [id, field] of FILES) if (chosen(id)) form.append(field, chosen(id), chosen(id).name);
      try {
        await showSummary((await api("POST", keyed("/upload_dataset"), { form })).dataset);
      } catch (error) {
        if (!placeError(error)) throw error;
      }
      poll();
    });
  });
  document.getElementById("preprocess").addEventListener("click", () => act("preprocess-error", async () => {
    await api("POST", keyed("/preprocess"));
    poll();
  }));
}
