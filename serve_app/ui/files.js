// Files in the browser: the first rows of a file chosen for upload, and the files of a results archive
// (GET /download_results is a tar.gz; the browser's DecompressionStream un-gzips it, the tar is read here).

export function parseDelimited(text, delimiter) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === delimiter) { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

// The header and first `n` rows of a CSV, TSV or JSONL file, read from its first 64 KiB only.
export async function previewRows(file, n = 5) {
  const text = await file.slice(0, 65536).text();
  const name = file.name.toLowerCase();
  if (name.endsWith(".jsonl") || name.endsWith(".json") || text.trimStart().startsWith("{")) {
    const records = text.split("\n").filter((l) => l.trim()).slice(0, n).map((l) => {
      try { return JSON.parse(l); } catch { return { "(cut or not JSON)": l.slice(0, 80) }; }
    });
    const header = [...new Set(records.flatMap((r) => Object.keys(r)))];
    return { header, rows: records.map((r) => header.map((h) => r[h])) };
  }
  const delimiter = name.endsWith(".tsv") || (text.split("\n")[0] || "").includes("\t") ? "\t" : ",";
  const all = parseDelimited(text, delimiter);
  return { header: all[0] || [], rows: all.slice(1, n + 1) };
}

const decoder = new TextDecoder();

function field(bytes, start, length) {
  const raw = bytes.subarray(start, start + length);
  const end = raw.indexOf(0);
  return decoder.decode(end < 0 ? raw : raw.subarray(0, end));
}

// The regular files of a tar.gz body, by their path in the archive.
export async function untarGz(response) {
  const stream = response.body.pipeThrough(new DecompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  const files = {};
  let offset = 0, longName = null;
  while (offset + 512 <= bytes.length) {
    const name = field(bytes, offset, 100);
    if (!name) break;
    const size = parseInt(field(bytes, offset + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(bytes[offset + 156] || 48);
    const prefix = field(bytes, offset + 345, 155);
    const data = bytes.subarray(offset + 512, offset + 512 + size);
    if (type === "x") { // a pax header: its `path` names the next entry
      const path = /\d+ path=([^\n]*)\n/.exec(decoder.decode(data));
      longName = path ? path[1] : null;
    } else if (type === "0" || type === "\0") {
      files[longName || (prefix ? `${prefix}/${name}` : name)] = data;
      longName = null;
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

// The archive's file whose path ends with `name` (results/<name>), as text; undefined when absent.
export function member(files, name) {
  const path = Object.keys(files).find((p) => p === name || p.endsWith(`/${name}`));
  return path === undefined ? undefined : decoder.decode(files[path]);
}

// Characters per example over `columns` (joined, as pairs are), from the whole file: files up to 32 MiB only.
export async function textLengths(file, columns) {
  if (!file || file.size > 32 * 1048576 || !columns || !columns.length) return null;
  const text = await file.text();
  const name = file.name.toLowerCase();
  let records;
  if (name.endsWith(".jsonl") || name.endsWith(".json") || text.trimStart().startsWith("{")) {
    records = text.split("\n").filter((l) => l.trim()).map((l) => { try { return JSON.parse(l); } catch { return {}; } });
  } else {
    const rows = parseDelimited(text, name.endsWith(".tsv") || (text.split("\n")[0] || "").includes("\t") ? "\t" : ",");
    const header = rows[0] || [];
    records = rows.slice(1).filter((r) => r.length > 1 || r[0]).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
  }
  const lengths = records.map((r) => columns.map((c) => String(r[c] ?? "")).join(" ").length);
  if (!lengths.length) return null;
  const sorted = [...lengths].sort((a, b) => a - b);
  return { mean: lengths.reduce((a, b) => a + b, 0) / lengths.length, median: sorted[sorted.length >> 1],
    max: sorted[sorted.length - 1] };
}
