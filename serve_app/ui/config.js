// The config screen: a form built from the API's own schema (TrainingConfigUpdate in /openapi.json), filled with
// the session's config (GET /parameters), with what each "auto" resolves to once a dataset is there.
import { act, api, el, fmt, keyed } from "./api.js";

const MAIN = ["model", "task_type", "epochs", "batch_size", "learning_rate", "max_seq_length", "eval_metrics",
  "metric_for_best_model", "validation_split", "warmup_ratio", "weight_decay", "early_stopping_patience",
  "precision", "seed", "init_eval", "search"];
let schema = null;
let shown = {}; // field -> the text the form was filled with, to send only what was changed

const variants = (prop) => (prop.anyOf || [prop]).filter((v) => v.type !== "null");

function kindOf(prop) {
  const vs = variants(prop);
  if (vs.some((v) => v.enum)) return { kind: "select", options: vs.flatMap((v) => v.enum || (v.const ? [v.const] : [])) };
  if (vs.every((v) => v.type === "boolean")) return { kind: "select", options: ["true", "false"] };
  if (vs.some((v) => v.$ref || v.type === "object")) return { kind: "json" };
  if (vs.some((v) => v.type === "array")) return { kind: "list" };
  return { kind: "text", numeric: vs.some((v) => v.type === "integer" || v.type === "number") };
}

function asText(value, kind) {
  if (value === undefined || value === null) return "";
  if (kind === "list") return value.join(", ");
  if (kind === "json") return JSON.stringify(value);
  return String(value);
}

function parse(text, prop, kind) {
  if (kind === "json") return text ? JSON.parse(text) : null;
  if (kind === "list") return text ? text.split(",").map((s) => s.trim()).filter(Boolean) : null;
  if (text === "") return null;
  if (text === "true" || text === "false") return text === "true";
  const numeric = variants(prop).some((v) => v.type === "integer" || v.type === "number");
  return numeric && text !== "auto" && !Number.isNaN(Number(text)) ? Number(text) : text;
}

function field(name, prop, value, resolved) {
  const { kind, options, numeric } = kindOf(prop);
  const id = `cfg-${name}`;
  const text = asText(value, kind);
  shown[name] = text;
  let input;
  if (kind === "select") {
    input = el("select", { id, name }, el("option", { value: "", text: "(none)" }),
      ...options.map((o) => el("option", { value: String(o), text: String(o) })));
    input.value = text;
  } else if (kind === "json") {
    input = el("textarea", { id, name, rows: "2", spellcheck: "false" });
    input.value = text;
  } else {
    input = el("input", { id, name, type: "text", spellcheck: "false", ...(numeric ? { inputmode: "decimal" } : {}) });
    input.value = text;
  }
  const help = el("small", { id: `${id}-help`, text: prop.description || "" });
  input.setAttribute("aria-describedby", `${id}-help`);
  const box = el("div", { class: "field" }, el("label", { for: id, text: name }), input);
  if (value === "auto" && resolved !== undefined) box.append(el("span", { class: "resolved", text: `auto → ${fmt(resolved)}` }));
  box.append(help);
  return box;
}

export async function loadConfig() {
  const box = document.getElementById("config-fields");
  try {
    schema = schema || (await api("GET", "/openapi.json")).components.schemas.TrainingConfigUpdate.properties;
    const params = await api("GET", "/parameters");
    const resolved = params.resolved || {};
    shown = {};
    const rest = Object.keys(schema).filter((n) => !MAIN.includes(n));
    const more = el("details", {}, el("summary", { text: "All other fields" }),
      ...rest.map((n) => field(n, schema[n], params.config[n], resolved[n])));
    box.replaceChildren(...MAIN.filter((n) => schema[n]).map((n) => field(n, schema[n], params.config[n], resolved[n])), more);
  } catch (error) {
    document.getElementById("config-error").textContent = `${error.status || ""}: ${error.message}`;
  }
}

function changes() {
  const body = {};
  for (const [name, prop] of Object.entries(schema)) {
    const input = document.getElementById(`cfg-${name}`);
    if (input && input.value.trim() !== shown[name]) body[name] = parse(input.value.trim(), prop, kindOf(prop).kind);
  }
  const extra = document.getElementById("config-extra").value.trim();
  return extra ? { ...body, ...JSON.parse(extra) } : body;
}

export function setupConfig() {
  document.getElementById("config-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const saved = document.getElementById("config-saved");
    saved.textContent = "";
    act("config-error", async () => {
      await api("POST", keyed("/parameters"), { json: changes() });
      document.getElementById("config-extra").value = "";
      await loadConfig();
      saved.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
    });
  });
  document.addEventListener("screen", (e) => { if (e.detail === "config") loadConfig(); });
}
