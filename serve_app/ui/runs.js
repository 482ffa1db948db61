// Runs and sessions: the session's training runs (GET /runs/{key}, one run's detail on demand) and the server's
// sessions (GET /sessions: ids, states and times, never keys).
import { act, api, el, keyed, table } from "./api.js";

const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");

async function showRun(runId) {
  const detail = await api("GET", keyed(`/runs`) + `/${encodeURIComponent(runId)}`);
  const pre = document.getElementById("run-detail");
  const { config, hyperparameters, final_metrics: metrics, events } = detail;
  pre.textContent = JSON.stringify({ run_id: runId, state: detail.state, hyperparameters, metrics, config,
    events: (events || []).map((e) => `${when(e.at)} ${e.kind}: ${e.message}`) }, null, 2);
  pre.hidden = false;
  pre.focus();
}

async function loadRuns() {
  const { runs } = await api("GET", keyed("/runs"));
  document.getElementById("runs").replaceChildren(table("Training runs of this session, newest first",
    ["run", "state", "started", "finished", "selected metric", "deployed", ""], runs.map((r) => {
      const button = el("button", { type: "button", text: "Details", "aria-label": `Details of run ${r.run_id}` });
      button.addEventListener("click", () => act("runs-error", () => showRun(r.run_id)));
      return [r.run_id, r.state, when(r.started_at), when(r.finished_at),
        r.selected ? `${r.selected.metric} ${r.selected.value?.toFixed(4) ?? ""} (${r.selected.split})` : "",
        r.deployed ? "yes" : "no", button];
    })));
}

async function loadSessions() {
  const { sessions, max_sessions: most } = await api("GET", "/sessions");
  document.getElementById("sessions").replaceChildren(table(`Sessions on this server (at most ${most})`,
    ["session id", "state", "started", "last call", "runs", "deployed"], sessions.map((s) =>
      [s.session_id, s.state, when(s.created_at), when(s.touched_at), s.runs, s.deployed ? "yes" : "no"])));
}

function refresh() {
  act("runs-error", loadRuns);
  act("sessions-error", loadSessions);
}

export function setupRuns() {
  document.getElementById("refresh-runs").addEventListener("click", refresh);
  document.addEventListener("screen", (e) => { if (e.detail === "runs") refresh(); });
}
